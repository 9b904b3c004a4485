# chatsite: `make run` serves the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# The suite runs on the embedded PostgreSQL (started by the suite itself) unless
# TEST_DATABASE_URL names another, and on the machine's Redis.
TEST_DATABASE_URL ?=
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14

.PHONY: run worker test lint format lock bench check-deploy clean messages

# The runtime dependencies alone for `make run`; the test and tooling extras on top for the rest.
$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.dev-installed: $(BIN)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py discover_models --timeout 5
	$(BIN)/python manage.py describe_setup --url http://$(HOST):$(PORT)/
	$(BIN)/daphne -b $(HOST) -p $(PORT) chatsite.asgi:application

worker: $(BIN)/.installed
	$(BIN)/celery -A chatsite worker --loglevel=info

test: $(BIN)/.dev-installed
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy's Django plugin imports chatsite.settings: a database URL keeps it from starting the
# embedded server (settings only, no connection is made).
lint: $(BIN)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=postgres://lint@localhost/lint $(BIN)/mypy

format: $(BIN)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-deploy: $(BIN)/.installed
	DEBUG=false SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=chat.example.com \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV)

# requirements*.txt, every version with its hashes, from the exact pins in requirements*.in:
# edit a .in file, then run this (pip installs a hashed file with --require-hashes).
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--no-reuse-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host
lock: $(BIN)/.dev-installed
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

# After adding or changing interface text: refresh locale/zh_Hans (translate what is new or
# fuzzy in django.po), then compile. Commit the .po and the .mo: nothing runs gettext at run time.
messages: $(BIN)/.installed
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete --add-location file \
		--ignore 'var/*' --ignore 'bench*' --ignore 'test-artifacts/*' --ignore 'tests/*' --ignore 'static/*'
	$(BIN)/python manage.py compilemessages -l zh_Hans --ignore '.*' --ignore 'var' --ignore 'bench*'

# Load and latency figures on this machine (see bench/): its own database and Redis db.
bench: $(BIN)/.dev-installed
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatsite_bench REDIS_URL=redis://127.0.0.1:6379/13 \
		$(BIN)/python -m bench
