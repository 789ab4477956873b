"""Hash-bank matching speed: a bank of N hashes against M images (worker/engine/hash_match.py).

    python -m bench.bank_match                    # 100,000 PDQ and pHash entries vs 1,000,000 images
    python -m bench.bank_match --bank 10000 --images 100000

Random hashes (PDQ's bits are near-uniform over unrelated images, the case that makes the
most candidate pairs) with planted near copies, matched at the default distances (PDQ 31,
pHash 6). Prints seconds per kind, including the hex decoding the service does; checks that
every planted copy is found. No database: the kernel alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from worker.engine.hash_match import hamming_matches, hex_words


def _hex(rows: np.ndarray) -> list[str]:
    return [row.astype(">u8").tobytes().hex() for row in rows]


def run(*, bank: int, images: int, words: int, max_distance: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    entries = rng.integers(0, 2**63, (bank, words), dtype=np.uint64) * np.uint64(2)
    entries ^= rng.integers(0, 2, (bank, words), dtype=np.uint64)
    targets = rng.integers(0, 2**63, (images, words), dtype=np.uint64) * np.uint64(2)
    planted = min(1000, bank, images)
    positions = rng.choice(images, size=planted, replace=False)
    for k, position in enumerate(positions):
        row = entries[k].copy()
        for bit in rng.choice(
            64 * words, size=int(rng.integers(0, max_distance + 1)), replace=False
        ):
            row[bit // 64] ^= np.uint64(1 << int(bit % 64))
        targets[position] = row
    entry_hex, target_hex = _hex(entries), _hex(targets)
    start = time.perf_counter()
    entry_words = hex_words(entry_hex, bits=64 * words)
    target_words = hex_words(target_hex, bits=64 * words)
    decoded = time.perf_counter()
    found = hamming_matches(entry_words, target_words, max_distance)
    done = time.perf_counter()
    pairs = set(zip(found.query.tolist(), found.target.tolist(), strict=True))
    missing = sum((k, int(p)) not in pairs for k, p in enumerate(positions))
    return {
        "decode_s": round(decoded - start, 2),
        "match_s": round(done - decoded, 2),
        "total_s": round(done - start, 2),
        "matches": len(found),
        "planted": planted,
        "planted_missed": missing,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--pdq-distance", type=int, default=31)
    parser.add_argument("--phash-distance", type=int, default=6)
    args = parser.parse_args(argv)
    for kind, words, distance in (
        ("pdq", 4, args.pdq_distance),
        ("phash", 1, args.phash_distance),
    ):
        result = run(bank=args.bank, images=args.images, words=words, max_distance=distance)
        print(
            f"{kind:5s} bank {args.bank:,} x images {args.images:,} (distance <= {distance}): "
            f"{result['total_s']} s ({result['decode_s']} s hex decoding, {result['match_s']} s "
            f"matching), {result['matches']:,} matches, "
            f"{result['planted_missed']} of {result['planted']} planted copies missed"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
