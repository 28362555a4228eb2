"""``python -m textrestore.models`` prints the preset table."""

import sys

from .cli import format_table, model_table

if __name__ == "__main__":
    print(format_table(model_table(), 400, 600))
    sys.exit(0)
