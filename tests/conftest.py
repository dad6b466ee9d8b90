import os

import torch
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.register_profile("ci", deadline=None, max_examples=150, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
torch.set_num_threads(min(2, torch.get_num_threads()))
