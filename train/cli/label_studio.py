"""`make label-studio`: start Label Studio on localhost with a project for the suggested sentences.

    python -m train.cli.label_studio [--tasks suggestions/tasks.json] [--port 8080]

Installs the pinned Label Studio on first use into .label-studio/venv (its own
environment, not .venv), keeps its database in .label-studio/data, creates a
project from the labelling interface generated from configs/labels.yaml, imports
the tasks, prints the address and the login, and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from train.annotation import label_studio as ls
from train.config import DEFAULT_CONFIG, load_config
from train.errors import UserError, exit_with
from train.logs import setup_command_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.cli.label_studio", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=Path, help="tasks to import into a new project "
                                                   "(default: suggestions/tasks.json when it exists)")
    parser.add_argument("--title", help="project title (default: from the tasks' folder)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--home", type=Path, default=Path(".label-studio"), help="installation and database")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config whose data section locates the labels")
    parser.add_argument("--install-only", action="store_true", help="install the pinned release and exit")
    args = parser.parse_args(argv)
    setup_command_logging()
    tasks_file = args.tasks or (Path("suggestions/tasks.json") if Path("suggestions/tasks.json").is_file() else None)
    server = None
    try:
        executable = ls.executable(args.home) if ls.is_installed(args.home) else ls.install(args.home)
        if args.install_only:
            print(f"Label Studio {ls.VERSION}: {executable}")
            return 0
        if tasks_file and not tasks_file.is_file():
            raise UserError(f"{tasks_file}: no such tasks file; write one with `make suggest`")
        tasks = json.loads(tasks_file.read_text(encoding="utf-8")) if tasks_file else []
        login = ls.credentials(args.home)
        url = f"http://127.0.0.1:{args.port}"
        log = args.home / "server.log"
        server = ls.start_server(executable, args.home / "data", args.port, login["username"], login["password"],
                                 login["token"], log)
        print(f"starting Label Studio {ls.VERSION} (log: {log}) ...", file=sys.stderr)
        ls.wait_until_up(url, server, log)
        title = args.title or f"news tagger: {tasks_file.parent.name if tasks_file else 'labels'}"
        labels = Path(load_config(args.config).data.labels)
        project, created = ls.open_project(ls.LabelStudioClient(url, login["token"]), title,
                                           ls.labeling_config(labels), tasks)
    except UserError as e:
        if server is not None:
            server.terminate()
        return exit_with(e)
    state = f"created with {len(tasks)} tasks" if created else "already there, left as it was"
    print(f"Label Studio: {url}/projects/{project} (project {title!r} {state})")
    print(f"log in as {login['username']} with password {login['password']} (kept in {args.home}/credentials.json)")
    print("label, then Export -> JSON and run `make import-labels FILE=<export>.json`; Ctrl-C stops the server")
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait()
        return 0


if __name__ == "__main__":
    sys.exit(main())
