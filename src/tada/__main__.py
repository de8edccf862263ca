"""``python -m tada``: the ``tada`` command."""
from .cli import main

if __name__ == "__main__":
    main()
