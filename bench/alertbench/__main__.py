"""`python -m bench.alertbench`: see bench/README.md."""

from bench.alertbench.cli import main

if __name__ == "__main__":
    main()
