"""``python -m interactive_eyes`` is the ``ie-bench`` command (same group, same exit codes)."""

from interactive_eyes.app.cli import main

if __name__ == "__main__":  # pragma: no branch
    main(prog_name="ie-bench")
