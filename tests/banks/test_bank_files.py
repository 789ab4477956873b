"""Reading bank files: every format this app exports, hash lists, HMA CSVs, and hostile input."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.services.bank_files import BankFileError, bank_file_parse

SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4
PHASH_A = "f0e1d2c3b4a59687"
PHASH_B = "0000ffff0000ffff"
PDQ_A = "ab" * 32


def entries(parsed) -> set[tuple[str, str]]:
    return {(e.kind, e.value) for e in parsed.entries}


def test_todays_csv_export_gives_sha256_and_phash_entries_with_their_verdict_and_path():
    data = (
        "sha256,phash,path,score,verdict,prompt_version,prompt_version_id\r\n"
        f"{SHA_A},{PHASH_A},cats/1.jpg,0.91,inappropriate,v1,3\r\n"
        f"{SHA_B},,dogs/2.png,0.55,unreviewed,v1,3\r\n"
    ).encode()
    parsed = bank_file_parse(data=data, file_name="export-4.csv")
    assert parsed.format == "csv"
    assert entries(parsed) == {("sha256", SHA_A), ("phash", PHASH_A), ("sha256", SHA_B)}
    first = next(e for e in parsed.entries if e.value == SHA_A)
    assert (first.label, first.source) == ("inappropriate", "cats/1.jpg")


def test_new_columns_provenance_lines_and_pdq_do_not_break_the_csv():
    data = (
        "# dataset: d1, prompt version: v1, threshold: 0.5\n"
        "# exported: 2026-12-02T10:00:00Z\n"
        "category,class_label,pdq,SHA256,n_verdicts,phash\n"
        f"weapons,revolver,{PDQ_A},{SHA_A.upper()},2,{PHASH_B}\n"
    ).encode()
    parsed = bank_file_parse(data=data, file_name="blocklist.csv")
    assert entries(parsed) == {("sha256", SHA_A), ("phash", PHASH_B), ("pdq", PDQ_A)}
    assert {e.category for e in parsed.entries} == {"weapons"}


def test_json_export_rows_and_a_bare_list():
    document = {"dataset": "d", "rows": [{"sha256": SHA_A, "phash": PHASH_A, "pdq": PDQ_A}]}
    parsed = bank_file_parse(data=json.dumps(document).encode(), file_name="export.json")
    assert parsed.format == "json"
    assert entries(parsed) == {("sha256", SHA_A), ("phash", PHASH_A), ("pdq", PDQ_A)}
    bare = bank_file_parse(data=json.dumps([{"sha256": SHA_B}]).encode())
    assert entries(bare) == {("sha256", SHA_B)}


def test_jsonl_with_a_provenance_line_and_rows():
    lines = [
        json.dumps({"provenance": {"dataset": "d1", "run": 4}}),
        json.dumps({"sha256": SHA_A, "verdict": "inappropriate"}),
        "",
        json.dumps({"phash": PHASH_A, "sha256": SHA_B}),
    ]
    parsed = bank_file_parse(data="\n".join(lines).encode())
    assert parsed.format == "jsonl"
    assert entries(parsed) == {("sha256", SHA_A), ("sha256", SHA_B), ("phash", PHASH_A)}


def test_parquet_export():
    table = pa.table({"sha256": [SHA_A, SHA_B], "phash": [PHASH_A, None], "score": [0.9, 0.8]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    parsed = bank_file_parse(data=buffer.getvalue(), file_name="blocklist.parquet")
    assert parsed.format == "parquet"
    assert entries(parsed) == {("sha256", SHA_A), ("sha256", SHA_B), ("phash", PHASH_A)}


def test_hash_lists_infer_phash_and_need_the_kind_for_64_hex_digits():
    phashes = bank_file_parse(data=f"# my list\n{PHASH_A}\n\n{PHASH_B.upper()}\n".encode())
    assert phashes.format == "hashes"
    assert entries(phashes) == {("phash", PHASH_A), ("phash", PHASH_B)}
    shas = bank_file_parse(data=f"{SHA_A}\n{SHA_B}\n".encode(), kind="sha256")
    assert entries(shas) == {("sha256", SHA_A), ("sha256", SHA_B)}
    pdqs = bank_file_parse(data=f"{PDQ_A}\n".encode(), kind="pdq")
    assert entries(pdqs) == {("pdq", PDQ_A)}
    with pytest.raises(BankFileError, match="line 2: 64 hex digits is a SHA-256 or a PDQ"):
        bank_file_parse(data=f"{PHASH_A}\n{SHA_A}\n".encode())


def test_hma_signal_csv_reads_pdq_and_sha256_and_counts_other_signal_types():
    data = (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{PDQ_A},Sample Collab,POSITIVE_CLASS,media_priority_s1\n"
        "video_md5,d41d8cd98f00b204e9800998ecf8427e,Sample Collab,POSITIVE_CLASS,\n"
        f"video_sha256,{SHA_A},Sample Collab,POSITIVE_CLASS,\n"
        "url,https://example.org/x,Sample Collab,INVESTIGATION_SEED,\n"
    ).encode()
    parsed = bank_file_parse(data=data, file_name="hma.csv")
    assert entries(parsed) == {("pdq", PDQ_A), ("sha256", SHA_A)}
    assert parsed.skipped == {"video_md5": 1, "url": 1}
    pdq = next(e for e in parsed.entries if e.kind == "pdq")
    assert (pdq.source, pdq.category, pdq.label) == (
        "Sample Collab", "POSITIVE_CLASS", "media_priority_s1",
    )  # fmt: skip


def test_headerless_hma_rows_need_the_kind():
    data = f"{PDQ_A},1234567890,2233445566,2020-07-31T18:47:45+0000,true_positive\n".encode()
    with pytest.raises(BankFileError, match="give the hash kind"):
        bank_file_parse(data=data, file_name="simple.pdq.te.csv")
    parsed = bank_file_parse(data=data, file_name="simple.csv", kind="pdq")
    assert entries(parsed) == {("pdq", PDQ_A)}
    assert parsed.entries[0].label == "true_positive"


def test_an_hma_file_of_only_other_signal_types_is_refused():
    data = b"signal_type,signal_str\nurl,https://example.org\n"
    with pytest.raises(BankFileError, match=r"skipped: 1 url"):
        bank_file_parse(data=data)


def test_duplicates_are_merged_and_counted():
    data = f"{PHASH_A}\n{PHASH_A}\n{PHASH_A.upper()}\n{PHASH_B}\n".encode()
    parsed = bank_file_parse(data=data)
    assert len(parsed.entries) == 2 and parsed.duplicates == 2


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (b"", "", "The file is empty."),
        (b"  \n\n\t\n", "", "The file is empty."),
        (b"# only a comment\n", "", "No hashes found"),
        (f"{PHASH_A}\nnot-a-hash-at-all\n".encode(), "", "line 2: 17 characters"),
        (
            f"{PHASH_A}\n{'g' * 16}\n".encode(),
            "",
            "line 2: 'gggggggggggggggg' is not a hexadecimal",
        ),
        (
            f"{SHA_A}\n{SHA_A[:-1]}\n".encode(),
            "sha256",
            "line 2: a sha256 hash has 64 hex digits, this one has 63",
        ),
        (
            f"sha256,path\n{SHA_A},x\n{SHA_A}00,y\n".encode(),
            "",
            "line 3: a sha256 hash has 64 hex digits, this one has 66",
        ),
        (f"sha256,path\n{SHA_A},x\n,y\n".encode(), "", "line 3: no sha256, phash or pdq hash"),
        (f"sha256\n{SHA_A},extra,cells\n".encode(), "", "line 2: 3 cells under a 1-column header"),
        (b"path,score\nx.jpg,0.5\n", "", "line 1: no column named sha256"),
        (b'{"rows": [{"sha256": "abc"}', "", "not valid JSON"),
        (b'{"rows": 5}', "", 'a "rows" list'),
        (b'[{"sha256": "' + SHA_A.encode() + b'"}, 7]', "", "row 2: not an object"),
        (b"\xff\xfe\x00garbage\n", "", "line 1: not UTF-8 text"),
        (b"PAR1 this is not parquet at all", "", "not a readable Parquet file"),
        (f"{PHASH_A}\n".encode(), "md5", "Unknown hash kind"),
    ],
)
def test_hostile_files_are_refused_with_their_line_numbers(data, kind, message):
    with pytest.raises(BankFileError) as caught:
        bank_file_parse(data=data, kind=kind)
    assert message in caught.value.message
    assert caught.value.status_code == 400


def test_many_bad_lines_are_listed_up_to_a_limit_with_the_total():
    data = "\n".join(["zz" * 8] * 50).encode()
    with pytest.raises(BankFileError) as caught:
        bank_file_parse(data=data)
    assert "line 1:" in caught.value.message and "line 20:" in caught.value.message
    assert "line 21:" not in caught.value.message and "(and 30 more)" in caught.value.message
