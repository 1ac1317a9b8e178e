"""`python -m hermes_bench` is the hermes-bench command."""

from hermes_bench.harness.cli import main

raise SystemExit(main())
