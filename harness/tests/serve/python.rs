//! The Python `kubernetes` client and kopf (see scripts/pyenv.sh).
