"""Checks the reference frontend's --record files: one JSON line per signed workflow_job
delivery ({"delivered_at", "guid", "payload"}), rotated past --record-max-bytes, and read by
`batch-scaler replay`. Prints one `PASS name` / `FAIL name: why` line per check."""
import json
import subprocess
import sys
from pathlib import Path


def main():
    record, binary, seed = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    results = []

    def check(name, ok, why=""):
        results.append(ok)
        print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)

    files = sorted(record.parent.glob(record.name + ".*"), key=lambda p: -int(p.suffix[1:])) + [record]
    files = [f for f in files if f.exists()]
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    check("frontend --record: rotated past --record-max-bytes", len(files) >= 2, [f.name for f in files])
    shaped = all(set(line) == {"delivered_at", "guid", "payload"} and "workflow_job" in line["payload"]
                 for line in lines)
    check("frontend --record: one line per workflow_job delivery, with its guid and payload",
          len(lines) >= 5 and shaped, lines[:2])
    check("frontend --record: pings and unsigned deliveries are not recorded",
          all(line["guid"] not in ("d-ping", "") for line in lines), [line["guid"] for line in lines])
    argv = [binary, "replay", "--json", "--seed", seed]
    for f in files:
        argv += ["--trace", str(f)]
    out = subprocess.run(argv, capture_output=True, text=True)
    report = json.loads(out.stdout) if out.returncode == 0 else {}
    check("batch-scaler replay reads the recorded (rotated) trace",
          out.returncode == 0 and report["total"]["jobs"] >= 1, out.stderr or out.stdout)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
