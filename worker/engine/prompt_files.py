"""Reading and writing prompt matrices in the Q16 paper's published format.

The paper's repository publishes tuned prompts as ``prompts.p``: a pickle
(protocol 3) of a float16 NumPy array of shape (2, D), row 0 appropriate,
row 1 inappropriate, not normalised. ``.npy`` files are accepted too.

Prompt files arrive as uploads, and unpickling runs code chosen by the file's
author. So the reader never calls :func:`pickle.load`: a restricted unpickler
resolves only the few globals that rebuild a plain numeric ndarray, wraps the
ones that allocate so they cannot be abused, and refuses everything else.
"""

from __future__ import annotations

import codecs
import io
import pickle
from collections.abc import Callable
from typing import IO, Any, BinaryIO, cast

import numpy as np

__all__ = ["PromptFileError", "read_published_prompts", "write_published_prompts"]

_NPY_MAGIC = b"\x93NUMPY"
_MAX_FILE_BYTES = (
    4 * 2**20
)  # a (2, 4096) float64 matrix is 64 KiB; anything huge is not a prompt file
_MAX_DIM = 65536

# numpy's own ndarray reconstructor, found without importing private modules.
_RECONSTRUCT = cast(Callable[..., Any], np.zeros(1).__reduce__()[0])


class PromptFileError(ValueError):
    """A prompt file is unreadable, unsafe or does not fit the model."""


class _NdarrayToken:
    """Stands in for ``numpy.ndarray`` in a pickle: usable only as _reconstruct's argument.

    Handing out the real class would let a pickle call ``ndarray(huge_shape)``.
    """


_NDARRAY_TOKEN = _NdarrayToken()


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy pickles always pass (ndarray, (0,), b"b") and restore the data via
    # __setstate__, which checks the buffer length; refuse anything else (e.g. a
    # huge shape that would allocate gigabytes from a tiny file).
    if subtype is not _NDARRAY_TOKEN or not isinstance(shape, tuple) or shape != (0,):
        raise PromptFileError("prompt file contains an unexpected array construction")
    result = _RECONSTRUCT(np.ndarray, (0,), dtype)
    assert isinstance(result, np.ndarray)
    return result


def _safe_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype[Any]:
    # Object arrays would let the pickle place arbitrary objects in the array.
    if not isinstance(spec, str):
        raise PromptFileError("prompt file contains an unsupported dtype")
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dtype.hasobject or dtype.kind not in "fiub":
        raise PromptFileError(f"prompt file has non-numeric dtype {dtype}")
    return dtype


def _safe_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    # Protocol-5 pickles rebuild arrays from an in-band buffer; its size bounds the array.
    if (
        not isinstance(buffer, bytes | bytearray)
        or not isinstance(dtype, np.dtype)
        or not isinstance(shape, tuple)
        or order not in ("C", "F")
    ):
        raise PromptFileError("prompt file contains an unexpected array construction")
    try:
        return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order)
    except (ValueError, TypeError) as exc:
        raise PromptFileError(f"prompt file array data is inconsistent: {exc}") from exc


def _safe_codecs_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles of bytes go through _codecs.encode(str, "latin1").
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise PromptFileError("prompt file contains an unsupported encode call")
    return codecs.encode(obj, "latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,  # numpy < 2 (the paper's files)
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,  # numpy >= 2
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy", "ndarray"): _NDARRAY_TOKEN,
    ("numpy", "dtype"): _safe_dtype,
    ("_codecs", "encode"): _safe_codecs_encode,
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild a numeric ndarray and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise PromptFileError(
                f"prompt file refers to {module}.{name}, which is not allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise PromptFileError("prompt file uses persistent ids, which are not allowed")


def _read_bytes(data: bytes | IO[bytes]) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raw = data.read(_MAX_FILE_BYTES + 1)
    if len(raw) == 0:
        raise PromptFileError("prompt file is empty")
    if len(raw) > _MAX_FILE_BYTES:
        raise PromptFileError(f"prompt file is larger than {_MAX_FILE_BYTES} bytes")
    return raw


def _load_array(raw: bytes) -> Any:
    if raw.startswith(_NPY_MAGIC):
        try:
            return np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise PromptFileError(f"unreadable .npy prompt file: {exc}") from exc
    try:
        return _ArrayOnlyUnpickler(io.BytesIO(raw)).load()
    except PromptFileError:
        raise
    except Exception as exc:  # malformed pickles fail in many ways
        if not raw.startswith(b"\x80"):  # protocol >= 2 pickles start with PROTO
            raise PromptFileError(
                "not a prompt file (expected a pickled (2, D) numpy array or a .npy file)"
            ) from exc
        raise PromptFileError(f"unreadable prompt pickle: {exc}") from exc


def read_published_prompts(
    data: bytes | BinaryIO,
    *,
    expected_dim: int | None = None,
    model_key: str | None = None,
) -> np.ndarray:
    """Read a prompt matrix from the paper's published format (or ``.npy``).

    Args:
        data: the file's bytes or a binary file object.
        expected_dim: the model's embedding dimension, if known.
        model_key: the model's identity, for the dimension-mismatch message.

    Returns:
        float32 array (2, D): row 0 appropriate, row 1 inappropriate.

    Raises:
        PromptFileError: not a prompt file, a pickle that refers to anything but
            numeric arrays, wrong shape, non-finite values, or a dimension that
            does not match ``expected_dim``.
    """
    array = _load_array(_read_bytes(data))
    if not isinstance(array, np.ndarray) or type(array) is not np.ndarray:
        raise PromptFileError(f"prompt file holds a {type(array).__name__}, not a numpy array")
    if array.dtype.kind not in "fiu":
        raise PromptFileError(f"prompt file has non-numeric dtype {array.dtype}")
    if array.ndim != 2 or array.shape[0] != 2:
        raise PromptFileError(
            f"prompt file has shape {array.shape}; expected (2, D): "
            "row 0 appropriate, row 1 inappropriate"
        )
    dim = array.shape[1]
    if not 0 < dim <= _MAX_DIM:
        raise PromptFileError(f"prompt file has implausible dimension {dim}")
    prompts = array.astype(np.float32)
    if not np.isfinite(prompts).all():
        raise PromptFileError("prompt file contains NaN or infinite values")
    if not (np.linalg.norm(prompts, axis=1) > 0).all():
        raise PromptFileError("prompt file has an all-zero row")
    if expected_dim is not None and dim != expected_dim:
        target = f"model {model_key}" if model_key else "the model"
        raise PromptFileError(
            f"prompt file has dimension {dim} but {target} embeds in {expected_dim}"
        )
    return prompts


def write_published_prompts(prompts: np.ndarray, target: BinaryIO) -> None:
    """Write a prompt matrix in the paper's published format.

    A protocol-3 pickle of a float16 (2, D) array, naming numpy's reconstructor
    as ``numpy.core.multiarray`` like the published files do, so that the
    paper's own code (numpy 1.x) can read exports too.

    Args:
        prompts: (2, D) prompt matrix, row 0 appropriate, row 1 inappropriate.
        target: a binary file object to write to.
    """
    array = np.asarray(prompts)
    if array.ndim != 2 or array.shape[0] != 2:
        raise PromptFileError(f"prompts must have shape (2, D), got {array.shape}")
    if not np.isfinite(array).all():
        raise PromptFileError("prompts contain NaN or infinite values")
    if array.size and np.abs(array).max() > np.finfo(np.float16).max:
        raise PromptFileError("prompts overflow float16")
    half = np.ascontiguousarray(array, dtype=np.float16)
    payload = pickle.dumps(half, protocol=3)
    # numpy >= 2 names its private module numpy._core, which numpy 1.x cannot import.
    # The GLOBAL opcode is a text line at a fixed place right after PROTO, and memo
    # indices do not depend on byte offsets, so renaming it in place is safe.
    new_name, old_name = b"cnumpy.core.multiarray\n", b"cnumpy._core.multiarray\n"
    if payload[2 : 2 + len(old_name)] == old_name:
        payload = payload[:2] + new_name + payload[2 + len(old_name) :]
    target.write(payload)
