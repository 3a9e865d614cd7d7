"""Label Studio: the labelling interface, tasks with pre-annotations, results, and its REST API.

The interface is generated from `configs/labels.yaml`, so the two cannot drift:
the previous sentence is shown above the sentence, topics are a multiple choice
and the speaker a single required choice. Results come back as Label Studio
"choices" regions named `topics` and `speaker`.

Sources (data/GUIDELINES.md §9): each mention is a span labelled with its type (`source`), with the
canonical name and the relayer typed into per-region text fields (`source_name`, `relayed_by`) and its rank
in a per-region number (`source_rank`, 1 for the main source: spans carry no order of their own); sources the
sentence does not name go one per line into `unnamed_sources` as `name | type | relayed_by`, after the named
ones; the quote kind is the single choice `quote`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from train.data.scheme import load_scheme
from train.errors import UserError
from train.sources.schema import QUOTE_KINDS, SOURCE_TYPES

VERSION = "1.23.2"  # the pinned release that `make label-studio` installs and the integration test runs
TEXT, CONTEXT, TOPICS, SPEAKER = "text", "context", "topics", "speaker"
SOURCE, SOURCE_NAME, RELAYED_BY, UNNAMED, QUOTE = "source", "source_name", "relayed_by", "unnamed_sources", "quote"
SOURCE_RANK = "source_rank"


class LabelStudioError(UserError):
    """Label Studio could not be started or answered a request with an error."""


def label_descriptions(labels_path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """(topic -> description, speaker -> description) from the scheme file, in its order."""
    load_scheme(labels_path)  # a malformed scheme is a SchemeError naming the file, not a KeyError here
    raw = yaml.safe_load(Path(labels_path).read_text(encoding="utf-8"))
    return dict(raw[TOPICS]), dict(raw["speakers"])


def labeling_config(labels_path: str | Path) -> str:
    """The labelling interface as Label Studio XML."""
    topics, speakers = label_descriptions(labels_path)
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Previous sentence (context, not to be labelled)", size="6")
    ET.SubElement(view, "Text", name=CONTEXT, value=f"${CONTEXT}")
    ET.SubElement(view, "Header", value="Sentence $article #$index ($outlet)")
    ET.SubElement(view, "Text", name=TEXT, value=f"${TEXT}")
    ET.SubElement(view, "Header", value="Topics: every one the sentence covers, or none", size="5")
    topic_choices = ET.SubElement(view, "Choices", name=TOPICS, toName=TEXT, choice="multiple", showInline="false")
    for topic, description in topics.items():
        ET.SubElement(topic_choices, "Choice", value=topic, hint=description)
    ET.SubElement(view, "Header", value="Speaker: whose position the sentence reports (exactly one)", size="5")
    speaker_choices = ET.SubElement(view, "Choices", name=SPEAKER, toName=TEXT, choice="single-radio",
                                    required="true", requiredMessage="Choose the speaker ('none' for narration)")
    for speaker, description in speakers.items():
        ET.SubElement(speaker_choices, "Choice", value=speaker, hint=description)
    ET.SubElement(view, "Header", value="Sources: mark each mention of whoever is quoted, then type its canonical "
                  "name in the nominative (GUIDELINES §9)", size="5")
    labels = ET.SubElement(view, "Labels", name=SOURCE, toName=TEXT)
    for kind in SOURCE_TYPES:
        ET.SubElement(labels, "Label", value=kind)
    ET.SubElement(view, "TextArea", name=SOURCE_NAME, toName=TEXT, perRegion="true", editable="true",
                  maxSubmissions="1", placeholder="canonical name, e.g. Дмитрий Песков")
    ET.SubElement(view, "TextArea", name=RELAYED_BY, toName=TEXT, perRegion="true", editable="true",
                  maxSubmissions="1", placeholder="relayed by (optional), e.g. Кремль")
    ET.SubElement(view, "Header", value="Rank of the selected source: 1 for the main one (the speaker's); "
                  "unranked sources follow in the order of the text", size="6")
    ET.SubElement(view, "Number", name=SOURCE_RANK, toName=TEXT, perRegion="true", min="1")
    ET.SubElement(view, "TextArea", name=UNNAMED, toName=TEXT, editable="true",
                  placeholder="sources not named in the sentence, one per line: name | type | relayed_by")
    quote = ET.SubElement(view, "Choices", name=QUOTE, toName=TEXT, choice="single-radio")
    for kind in QUOTE_KINDS:
        ET.SubElement(quote, "Choice", value=kind)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def choice_result(name: str, choices: list[str], score: float | None = None) -> dict:
    """One `choices` region of a result, as in Label Studio's JSON task format."""
    result = {"from_name": name, "to_name": TEXT, "type": "choices", "value": {"choices": list(choices)}}
    if score is not None:
        result["score"] = round(float(score), 4)
    return result


def labels_from_result(result: list[dict]) -> tuple[list[str], list[str]]:
    """(topics, speakers) chosen in an annotation's result; a region for another control is ignored."""
    topics: list[str] = []
    speakers: list[str] = []
    for region in result:
        chosen = region.get("value", {}).get("choices", [])
        if region.get("from_name") == TOPICS:
            topics.extend(chosen)
        elif region.get("from_name") == SPEAKER:
            speakers.extend(chosen)
    return topics, speakers


def source_results(sources: list[dict], quote: str) -> list[dict]:
    """Regions for a sentence's sources and quote kind (pre-annotation): a labelled span per mention with its
    name (and relayer) in the per-region text fields and its rank among the sources, the unnamed ones as lines,
    the quote as a choice."""
    result, unnamed = [], []
    for number, source in enumerate(sources):
        if source.get("start") is None:
            unnamed.append(" | ".join([source["name"], source["type"], *([source["relayed_by"]]
                                                                         if source.get("relayed_by") else [])]))
            continue
        span = {"start": source["start"], "end": source["end"], "text": source["mention"]}
        region = {"id": f"source{number}", "from_name": SOURCE, "to_name": TEXT, "type": "labels",
                  "value": {**span, "labels": [source["type"]]}}
        result.append(region)
        fields = [(SOURCE_NAME, source["name"]), (RELAYED_BY, source.get("relayed_by"))]
        result.extend({"id": region["id"], "from_name": name, "to_name": TEXT, "type": "textarea",
                       "value": {**span, "text": [value]}} for name, value in fields if value)
        result.append({"id": region["id"], "from_name": SOURCE_RANK, "to_name": TEXT, "type": "number",
                       "value": {**span, "number": number + 1}})
    if unnamed:
        result.append({"from_name": UNNAMED, "to_name": TEXT, "type": "textarea", "value": {"text": unnamed}})
    return [*result, choice_result(QUOTE, [quote])]


def sources_from_result(result: list[dict]) -> tuple[list[dict], str] | None:
    """(sources, quote) of an annotation's result, in the annotation format; None when it marks neither
    (an annotation made without the sources fields). Mentions come by rank, the unranked after them in the order
    of the text, then the unnamed sources; the validator checks names, types and offsets against the text."""
    spans: dict[str, dict] = {}
    texts: dict[tuple[str, str], str] = {}
    ranks: dict[str, float] = {}
    unnamed: list[str] = []
    quotes: list[str] = []
    for region in result:
        value, name = region.get("value", {}), region.get("from_name")
        if name == SOURCE:
            spans[region.get("id")] = {"start": value.get("start"), "end": value.get("end"),
                                       "mention": value.get("text"), "type": (value.get("labels") or [""])[0]}
        elif name == SOURCE_RANK and isinstance(value.get("number"), (int, float)):
            ranks[region.get("id")] = value["number"]
        elif name in (SOURCE_NAME, RELAYED_BY):
            texts[(region.get("id"), name)] = " ".join(value.get("text") or []).strip()
        elif name == UNNAMED:
            unnamed.extend(line for text in value.get("text") or [] for line in text.splitlines() if line.strip())
        elif name == QUOTE:
            quotes.extend(value.get("choices") or [])
    if not spans and not unnamed and not quotes:
        return None
    sources = [{"name": texts.get((key, SOURCE_NAME), ""), **span, "relayed_by": texts.get((key, RELAYED_BY)) or None}
               for key, span in sorted(spans.items(),
                                       key=lambda item: (ranks.get(item[0], float("inf")), item[1]["start"] or 0))]
    for line in unnamed:
        parts = [part.strip() for part in line.split("|")]
        name, kind, relayed = (parts + [""] * 3)[:3]
        sources.append({"name": name, "mention": None, "start": None, "end": None, "type": kind or "person",
                        "relayed_by": relayed or None})
    return sources, quotes[0] if quotes else ("none" if not sources else "")


class LabelStudioClient:
    """The few REST calls the annotation loop needs, with a legacy API token (`Authorization: Token ...`)."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            raise LabelStudioError(f"{method} {self.url}{path}: HTTP {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise LabelStudioError(f"{method} {self.url}{path}: {e.reason}; is Label Studio running?") from None
        return json.loads(payload) if payload else None

    def projects(self) -> list[dict]:
        answer = self.request("GET", "/api/projects?page_size=1000")
        return answer["results"] if isinstance(answer, dict) else answer

    def create_project(self, title: str, label_config: str) -> int:
        return self.request("POST", "/api/projects", {"title": title, "label_config": label_config})["id"]

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        return self.request("POST", f"/api/projects/{project}/import", tasks)["task_count"]

    def task_ids(self, project: int) -> list[int]:
        answer = self.request("GET", f"/api/tasks?project={project}&page_size=100000")
        return [task["id"] for task in answer["tasks"]]

    def annotate(self, task: int, result: list[dict], cancelled: bool = False) -> None:
        self.request("POST", f"/api/tasks/{task}/annotations", {"result": result, "was_cancelled": cancelled})

    def export(self, project: int) -> list[dict]:
        return self.request("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")


def executable(home: Path) -> Path:
    return home / "venv" / "bin" / "label-studio"


def is_installed(home: Path) -> bool:
    """Whether the pinned release is installed in `home`/venv (a marker names the version)."""
    return executable(home).is_file() and (home / "venv" / f".installed-{VERSION}").is_file()


def install(home: Path) -> Path:
    """Install the pinned Label Studio into a virtual environment of its own: its Django stack stays out of .venv."""
    venv = home / "venv"
    for command in ([sys.executable, "-m", "venv", str(venv)],
                    [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"label-studio=={VERSION}"]):
        if subprocess.run(command).returncode != 0:
            raise LabelStudioError(f"installing Label Studio {VERSION} into {venv} failed: {' '.join(command)}")
    (venv / f".installed-{VERSION}").touch()
    return executable(home)


def credentials(home: Path) -> dict[str, str]:
    """The login and API token of the local server: LABEL_STUDIO_USERNAME/PASSWORD/USER_TOKEN if set, else
    generated once and kept in `home`/credentials.json, since the server's database remembers the first ones."""
    path = home / "credentials.json"
    stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {
        "username": "annotator@example.com", "password": secrets.token_urlsafe(12), "token": secrets.token_hex(20)}
    if not path.is_file():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=1), encoding="utf-8")
        path.chmod(0o600)
    return {"username": os.environ.get("LABEL_STUDIO_USERNAME", stored["username"]),
            "password": os.environ.get("LABEL_STUDIO_PASSWORD", stored["password"]),
            "token": os.environ.get("LABEL_STUDIO_USER_TOKEN", stored["token"])}


def open_project(client: LabelStudioClient, title: str, label_config: str, tasks: list[dict]) -> tuple[int, bool]:
    """(project id, created): the project titled `title`, created with the config and tasks if it is new.

    An existing project is left as it is, so starting the server again never imports the same tasks twice.
    """
    existing = [project["id"] for project in client.projects() if project.get("title") == title]
    if existing:
        return existing[0], False
    project = client.create_project(title, label_config)
    if tasks:
        client.import_tasks(project, tasks)
    return project, True


def server_environment(data_dir: Path, username: str, password: str, token: str) -> dict[str, str]:
    """The environment that makes a fresh server create this user with this legacy API token."""
    return {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LABEL_STUDIO_USERNAME": username,
            "LABEL_STUDIO_PASSWORD": password, "LABEL_STUDIO_USER_TOKEN": token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}


def start_server(executable: str | Path, data_dir: Path, port: int, username: str, password: str, token: str,
                 log: Path) -> subprocess.Popen:
    """Start Label Studio on 127.0.0.1:port, its database in `data_dir`, its output in `log`."""
    if not Path(executable).is_file():
        raise LabelStudioError(f"{executable}: Label Studio is not installed; `make label-studio` installs it")
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return subprocess.Popen(
            [str(executable), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=server_environment(data_dir, username, password, token), stdout=output, stderr=subprocess.STDOUT)


def wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Return once `url/health` answers; a server that exits or stays silent is an error naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise LabelStudioError(f"Label Studio exited with status {server.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    last_lines = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-10:])
    raise LabelStudioError(f"Label Studio did not answer at {url} within {timeout:.0f} s; see {log}, which ends:\n"
                           f"{last_lines}")
