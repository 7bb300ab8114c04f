# The two commands of the README. Both work on a fresh machine.
.PHONY: serve test lint setup-serve setup-dev

serve: setup-serve          ## set up the slim install and serve the shipped default model on :8000
	@echo "hazardscan: serving models/default on http://127.0.0.1:8000 (all interfaces, port 8000):"
	@echo "  app /app/, API docs /docs, health /healthz. Ctrl-C stops it."
	.venv/bin/hazardscan serve --host 0.0.0.0 --port 8000

test: setup-dev lint        ## set up everything and run lint, type checks and the tests
	.venv/bin/python -m pytest -q

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

setup-serve:
	scripts/setup.sh serve

setup-dev:
	scripts/setup.sh dev
