"""``python -m tada.cli``: the ``tada`` command."""
from . import main

if __name__ == "__main__":
    main()
