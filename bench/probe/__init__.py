"""The probe: does any Procfile web app keep state in its processes? ``scripts/probe APP_DIR`` (bench.probe.run)."""
