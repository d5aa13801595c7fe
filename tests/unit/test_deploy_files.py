"""compose.yaml and the Dockerfile keep their safe defaults (no Docker engine runs here, so
these are read, not run)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_requires_a_key_and_publishes_on_loopback_only():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for key, value in (service.get("environment") or {}).items():
            if "API_KEY" in key or "PASSWORD" in key or key == "ARAG_DECISIONS_URL":
                assert ":?" in str(value) and "change-me" not in str(value), f"{name}.{key} has a default key"


def test_compose_runs_a_postgres_decision_log_for_the_api():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    postgres, api = compose["services"]["postgres"], compose["services"]["api"]
    assert postgres["image"].startswith("postgres:")
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert postgres["ports"] == ["127.0.0.1:5432:5432"]
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"] and postgres["volumes"][0].endswith(":/var/lib/postgresql/data")
    url = api["environment"]["ARAG_DECISIONS_URL"]
    assert url.startswith("postgresql://") and "${POSTGRES_PASSWORD:?" in url and "@postgres:5432/" in url
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy" and "healthcheck" in postgres


def test_the_image_runs_as_an_unprivileged_user():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines.index(f"USER {users[-1]}") > max(i for i, line in enumerate(lines) if line.startswith("RUN "))


def test_the_api_needs_keys_from_the_environment_and_none_are_baked_in():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    keys = compose["services"]["api"]["environment"]["ARAG_API_KEYS"]
    assert keys.startswith("${ARAG_API_KEYS:?")  # required, no default
    assert "--host 0.0.0.0" in " ".join(compose["services"]["api"]["command"])  # refused without keys
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not any(line.strip().startswith(("ENV ARAG_API_KEYS", "ARG ARAG_API_KEYS")) for line in dockerfile.splitlines())
