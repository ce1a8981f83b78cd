"""`python -m stylecls` (and `torchrun -m stylecls`) run the command-line app."""

from stylecls.cli import main

if __name__ == "__main__":
    main()
