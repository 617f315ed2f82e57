"""``python -m spinepose_deploy.cli``."""

from . import main

raise SystemExit(main())
