#!/usr/bin/python3
"""The tables docs/results.md quotes, on run folders made up here, with numbers worked out by hand.

experiments/bf16_parity --table-only: mean ± sample std over seeds, the bf16 − fp32 difference
paired by seed (a seed missing in one precision drops out of the pairs, not out of its own column),
the GMACs, and the median of the epochs' training images per second over every finished run of a
precision.  experiments/seeds_table: the same statistics per configuration, the difference of
means with its standard error and the study's verdict (beyond noise past 2 standard errors), and
a clear refusal of an unfinished run folder.

    test_experiment_tables.py [REPO]     (default: the repository this file is in)
"""
import json
import os
import subprocess
import sys
import tempfile

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def run_folder(root, name, acc, gmacs, speeds, best=None, seed=1, first=(14, 14)):
    d = os.path.join(root, name)
    os.makedirs(d)
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump({"test_acc": acc, "best_test_acc": acc if best is None else best, "gmacs": gmacs,
                   "sizes": [list(first), [7, 7]]}, f)
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"seed": seed}, f)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for e, s in enumerate(speeds, 1):
            f.write(json.dumps({"epoch": e, "images_per_s": s}) + "\n")


def table(out):
    r = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "bf16_parity"),
                        "--out", out, "--jobs", "main", "--table-only"],
                       capture_output=True, text=True, check=True)
    rows = [line for line in r.stdout.splitlines() if line.startswith("| main:")]
    assert len(rows) == 1, r.stdout
    return [c.strip() for c in rows[0].strip("|").split("|")]


def main():
    failed = 0

    def check(what, got, want):
        nonlocal failed
        ok = got == want
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {got!r}" + ("" if ok else f", expected {want!r}"))

    with tempfile.TemporaryDirectory() as out:
        # fp32 90, 91, 92: 91.00 ± 1.00; bf16 90.5, 91.5, 91: 91.00 ± 0.50;
        # pairs +0.5, +0.5, −1: mean 0, sd √((0.25 + 0.25 + 1) / 2) = 0.866
        run_folder(out, "main-fp32-s1", 90.0, 0.0100, [100, 300])
        run_folder(out, "main-fp32-s2", 91.0, 0.0110, [200])
        run_folder(out, "main-fp32-s3", 92.0, 0.0120, [400, 500])   # median of 100..500: 300
        run_folder(out, "main-bf16-s1", 90.5, 0.0100, [150, 250])
        run_folder(out, "main-bf16-s2", 91.5, 0.0100, [350])
        run_folder(out, "main-bf16-s3", 91.0, 0.0130, [450])        # median of 4: (250 + 350) / 2
        c = table(out)
        check("fp32 accuracy", c[1], "91.00 ± 1.00%")
        check("bf16 accuracy", c[2], "91.00 ± 0.50%")
        check("paired difference", c[3], "0.00 ± 0.87 points")
        check("fp32 GMACs", c[4], "0.0110 ± 0.0010")
        check("bf16 GMACs", c[5], "0.0110 ± 0.0017")
        check("fp32 img/s", c[6], "300")
        check("bf16 img/s", c[7], "300")
        check("seeds", c[8], "1,2,3")

        # An unfinished bf16 run (no summary.json): out of the bf16 column, the pairs and the speed.
        os.remove(os.path.join(out, "main-bf16-s3", "summary.json"))
        c = table(out)
        check("bf16 accuracy, seed 3 unfinished", c[2], "91.00 ± 0.71%")
        check("pairs, seed 3 unfinished", c[3], "0.50 ± 0.00 points")
        check("bf16 img/s, seed 3 unfinished", c[7], "250")

    with tempfile.TemporaryDirectory() as out:
        c = table(out)
        check("no runs", c[1:8], ["-"] * 7)

    with tempfile.TemporaryDirectory() as out:
        # A 90, 91, 92 (sd 1); B 91, 92, 93: Δ +1, standard error √(1/3 + 1/3) = 0.816, within
        # 2 of them; C 95, 95.5, 96 (sd 0.5): Δ +4.5, error √(1/3 + 0.25/3) = 0.645: beyond.
        for name, accs in (("a", (90, 91, 92)), ("b", (91, 92, 93)), ("c", (95, 95.5, 96))):
            for s, acc in enumerate(accs, 1):
                run_folder(out, f"{name}-s{s}", acc, 0.01 * s, [], best=acc + 0.5, seed=s,
                           first=(s + 4, 9))
        groups = [f"{n}=" + ",".join(os.path.join(out, f"{n}-s{s}") for s in (1, 2, 3))
                  for n in ("a", "b", "c")]
        r = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "seeds_table"), *groups],
                           capture_output=True, text=True)
        rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
                for line in r.stdout.splitlines() if line.startswith("| a ") or line.startswith("| b ")}
        check("seeds_table exit", r.returncode, 0)
        check("seeds_table row a", rows.get("a"),
              ["a", "1,2,3", "91.00 ± 1.00", "91.50 ± 1.00", "0.0200 ± 0.0100", "5x9, 6x9, 7x9"])
        check("seeds_table b − a", [line for line in r.stdout.splitlines() if line.startswith("b − a")],
              ['b − a, last epoch: Δ +1.00 ± 0.82 points (± one standard error); "b beats a": inconclusive (within noise).'])
        check("seeds_table c − a", [line for line in r.stdout.splitlines() if line.startswith("c − a")],
              ['c − a, last epoch: Δ +4.50 ± 0.65 points (± one standard error); "c beats a": holds.'])
        os.remove(os.path.join(out, "b-s2", "summary.json"))
        r = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "seeds_table"), *groups],
                           capture_output=True, text=True)
        check("seeds_table, an unfinished run", (r.returncode, "b-s2/summary.json" in r.stderr), (1, True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
