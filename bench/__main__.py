"""``python -m bench``: run the benchmarks, print a table, write bench/results/<timestamp>.json."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
