"""Starts the local server, signs in with its demo admin, runs schemathesis
against its /openapi.json with that session, and stops the server.
Exits with schemathesis's status; prints how many requests it generated."""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVER = os.environ.get("LOCAL_SERVER", os.path.join(ROOT, "target/debug/release-dashboard-local"))
REPORT_DIR = os.path.join(ROOT, "target/api-fuzz")


def main() -> int:
    mail = tempfile.mkdtemp(prefix="api-fuzz-mail-")
    server = subprocess.Popen(
        [SERVER, "--port", "0", "--demo-tick", "0", "--mail-dir", mail],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = password = None
        for line in server.stdout:
            if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
            if m := re.search(r"demo login: (\S+) / (\S+)", line):
                email, password = m.group(1), m.group(2)
            if url and password:
                break
        if not (url and password):
            print("the local server printed no URL or login", file=sys.stderr)
            return 1
        # Keep reading its log, or a full pipe would stall the server.
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        body = json.dumps({"email": email, "password": password}).encode()
        request = urllib.request.Request(url + "/auth/login", data=body, headers={"Content-Type": "application/json"})
        token = json.load(urllib.request.urlopen(request, timeout=10))["token"]
        os.makedirs(REPORT_DIR, exist_ok=True)
        command = [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "--config-file", os.path.join(HERE, "schemathesis.toml"),
            "run", url + "/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--checks", "all",
            # A schema cannot say which opaque cursors, addresses or
            # passwords are valid; a 400 for those is the right answer.
            "--exclude-checks", "positive_data_acceptance",
            # Ends the session the run uses.
            "--exclude-path", "/auth/logout",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", os.environ.get("MAX_EXAMPLES", "100"),
            "--seed", "1", "--workers", "1",
            "--request-timeout", "10",
            "--report", "ndjson", "--report-dir", REPORT_DIR,
            "--no-color",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        with open(os.path.join(REPORT_DIR, "output.txt"), "w") as f:
            f.write(output.replace(token, "[token]"))
        summary = re.search(r"(\d+) generated", output)
        print(output[output.find("=== SUMMARY") if "=== SUMMARY" in output else 0:].replace(token, "[token]"))
        if summary:
            print(f"api fuzz: {summary.group(1)} generated requests")
        return result.returncode
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
