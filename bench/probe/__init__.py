"""The probe wing: tells whether any Procfile web app keeps state in its processes (scripts/probe APP_DIR)."""
