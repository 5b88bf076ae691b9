"""What the tests, the bench/ scripts and the load tool (loadtest/) share to run the app for real: a `streamlit
run` server on a free port and Debian's headless chromium (`harness.browser`), and throwaway PostgreSQL and
S3-compatible services (`harness.services`). Development tooling only: the app never imports it."""
