"""Pulumi entry point: ``pulumi up`` runs this with ``infra/`` as the program."""

import sys
from pathlib import Path

# Pulumi runs this file as a script; the program imports `infra` and
# `consumer_patch` as packages from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import load_config
from infra.program import build_program

build_program(load_config())
