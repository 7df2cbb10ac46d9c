"""End-to-end reads with the Python peers (hvac, boto3) against the servers that
`cargo xtask services up` started, measured like the Rust peers in src/main.rs: warm-up,
then per-read wall time (p50, p90, and the distribution as 16 percentiles) and client CPU
per read (getrusage, user + system). Prints one JSON object. Run by `cargo xtask bench`
from the venv it provisions.

usage: python bench.py vault|aws
"""

import json
import os
import resource
import sys
import time

WARMUP = 200
READS = 1000
VALUE = "0123456789abcdef" * 4  # the 64-byte value src/main.rs writes
PERCENTILES = [0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.9, 100]


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(name, read):
    for _ in range(WARMUP):
        if read() != len(VALUE):
            raise SystemExit(f"{name}: wrong value length")
    samples = []
    cpu_start = cpu_seconds()
    for _ in range(READS):
        start = time.perf_counter()
        read()
        samples.append(time.perf_counter() - start)
    cpu = cpu_seconds() - cpu_start
    samples.sort()

    def pct(p):
        return samples[round((len(samples) - 1) * p)] * 1e6

    return {
        name: {
            "reads": READS,
            "p50_us": pct(0.5),
            "p90_us": pct(0.9),
            # the same percentiles as src/main.rs's PERCENTILES, as [percent, us] pairs
            "latency_percentiles_us": [[p, round(pct(p / 100), 1)] for p in PERCENTILES],
            "cpu_us_per_read": cpu * 1e6 / READS,
        }
    }


def vault():
    import hvac

    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])

    def read():
        out = client.secrets.kv.v2.read_secret_version(
            path="bench/peer", mount_point="secret", raise_on_deleted_version=True
        )
        return len(out["data"]["data"]["value"])

    return measure("hvac", read)


def aws():
    import boto3

    client = boto3.client(
        "secretsmanager",
        endpoint_url=os.environ["STRONGROOM_ITEST_AWS_ENDPOINT"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ["STRONGROOM_ITEST_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["STRONGROOM_ITEST_AWS_SECRET_ACCESS_KEY"],
    )

    def read():
        return len(client.get_secret_value(SecretId="bench/peer")["SecretString"])

    return measure("boto3", read)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "vault":
        print(json.dumps(vault()))
    elif which == "aws":
        print(json.dumps(aws()))
    else:
        raise SystemExit("usage: bench.py vault|aws")
