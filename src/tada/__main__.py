"""``python -m tada``: the ``tada`` command."""
from .cli import main

main()
