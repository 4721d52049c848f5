"""dynopool for PyTorch (docs/guide.md, "Deploy", "PyTorch")."""
from . import models, reference
