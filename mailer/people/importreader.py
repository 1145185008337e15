"""The reading half of an import: CSV rows -> validated, merged, hashed batches.

`read_batches` turns a CSV into `Batch`es ready for the database: each valid
row validated and normalised, rows of one address merged, the keyed hash the
suppression check needs computed, attributes as JSON, the rows sorted by
address key (so the unique indexes take them in order). Rejected rows travel
in the batch with their line and reason; the writer reports them.

For a large file `batches_in_child` runs that in a child process, so reading
and validating (half the work of an import) use the second core while the
parent writes the previous batch; a small file is read in a thread, which
starts at once. Either way at most two batches (and a pipe's buffer) are held in memory.
"""

from __future__ import annotations

import os
import pickle
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, Generator, Iterator

from mailer.people.addresses import email_and_key
from mailer.people.csvsource import Row, read_rows
from mailer.people.importformats import Mapper, detect
from mailer.errors import InputError, MailerError
from mailer.people.segments import check_tag
from mailer.people.subscriptions import clean_name, email_hasher

MAX_ATTRIBUTE = 1000
CHILD_MIN_BYTES = 4 << 20   # files this big are read in a child process (its start costs ~0.2 s)


@dataclass
class Batch:
    """Up to batch_size valid rows of one stretch of the file, plus the rows rejected there.

    rows: (line, email, key, name, attributes as JSON, email hash, tags joined by ",", consent,
    suppress), one per address, by key. A `tags` column ("eastfield, volunteer"; "," or ";" between
    tags) gives tags. consent is () or, for another tool's export, (opt-in at, IP, confirmed at, IP);
    suppress is None or the (scope, reason) of a row that export says must not be mailed
    (mailer.people.importformats).
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    read: int = 0                      # data rows read for this batch, valid or not
    duplicates: int = 0                # rows merged into an earlier row of this batch
    rejects: list[tuple[int, str]] = field(default_factory=list)
    first_line: int = 0                # of the valid rows, for the audit event
    last_line: int = 0
    position: int = 0                  # bytes of the file read so far
    tags_normalised: int = 0           # tags of another tool's export with spaces or capitals changed
    source: str = ""                   # the tool whose export the file is, or ""


def _validate(row: Row, mapper: Mapper | None) -> tuple[str, str, str, dict[str, str], tuple[str, ...],
                                                      tuple[Any, ...], Any, int] | str:
    """(email, key, name, attributes, tags, consent, suppress, tags normalised) of a good row, or why
    it is rejected."""
    if row.error:
        return row.error
    attributes, raw_name, consent, suppress, normalised = row.attributes, row.name, (), None, 0
    try:
        email, key = email_and_key(row.email)
        if mapper is not None:
            mapped = mapper.apply(raw_name, attributes)
            attributes, raw_name, consent, suppress = mapped.attributes, mapped.name, mapped.consent, mapped.suppress
            normalised = mapped.normalised_tags
            if mapped.tags:
                attributes["tags"] = mapped.tags
        name = clean_name(raw_name) if raw_name else ""
    except InputError as exc:
        return str(exc)
    tags: tuple[str, ...] = ()
    if "tags" in attributes:
        attributes = dict(attributes)
        try:
            tags = tuple(check_tag(t, "column 'tags': tag") for t in re.split(r"[,;]", attributes.pop("tags"))
                         if t.strip())
        except InputError as exc:
            return str(exc)
    for column, value in attributes.items():
        if len(value) > MAX_ATTRIBUTE:
            return f"column {column!r}: value longer than {MAX_ATTRIBUTE} characters"
    return email, key, name, attributes, tags, consent, suppress, normalised


def _json(attributes: dict[str, str]) -> str:
    """json.dumps(attributes) for a dict of strings, byte for byte, at a third of the cost."""
    if not attributes:
        return "{}"
    return "{" + ", ".join([f"{_quote(k)}: {_quote(v)}" for k, v in attributes.items()]) + "}"


def read_batches(path: Path, f: IO[bytes], hash_key: str, batch_size: int,
                 source: str | None = None) -> Iterator[Batch]:
    """Batches of the CSV open as binary *f*; the last one may be empty. InputError for an unusable file.

    *source* forces the export format (mailer.people.importformats); by default the header tells.
    """
    hasher = email_hasher(hash_key)
    batch = Batch()
    merged: dict[str, list[Any]] = {}
    held = 0
    mapper: Mapper | None = None

    def on_header(line: str) -> None:
        nonlocal mapper
        mapper = detect(path, line, source)

    def finish() -> Batch:
        done = batch
        done.rows = [(line, email, key, name, _json(attrs), hasher(key), ",".join(tags), consent, suppress)
                     for key, (line, email, name, attrs, tags, consent, suppress) in sorted(merged.items())]
        done.position = f.tell()
        done.source = mapper.kind if mapper is not None else ""
        return done

    for row in read_rows(path, f, on_header):
        batch.read += 1
        checked = _validate(row, mapper)
        if isinstance(checked, str):
            batch.rejects.append((row.line, checked))
        else:
            email, key, name, attributes, tags, consent, suppress, normalised = checked
            batch.tags_normalised += normalised
            seen = merged.get(key)
            if seen is None:
                merged[key] = [row.line, email, name, attributes, tags, consent, suppress]
            else:      # the first row's address and name win, later columns add to its attributes
                batch.duplicates += 1
                seen[2] = seen[2] or name
                seen[3] = {**seen[3], **attributes}
                seen[4] = tuple(dict.fromkeys(seen[4] + tags))
                seen[5] = seen[5] or consent
                seen[6] = seen[6] or suppress
            batch.first_line = batch.first_line or row.line
            batch.last_line = row.line
        held += 1
        if held >= batch_size:
            yield finish()
            batch, merged, held = Batch(), {}, 0
    yield finish()


def batches_in_thread(path: Path, f: IO[bytes], hash_key: str, batch_size: int,
                      source: str | None = None) -> Generator[Batch, None, None]:
    """read_batches run by a thread one batch ahead of the caller.

    sqlite3 and psycopg release the GIL while the database works, so reading overlaps
    some of the writing. Closing this generator stops the thread and waits for it; its
    exceptions are raised here.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        items = read_batches(path, f, hash_key, batch_size, source)
        try:
            for item in items:
                if not put(("batch", item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
        else:
            put(("end", None))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def batches_in_child(path: Path, hash_key: str, batch_size: int,
                     source: str | None = None) -> Generator[Batch, None, None]:
    """read_batches run by a child process (true parallelism): the same batches, or the same InputError.

    The child is ``python -m mailer.people.importreader``; the hash key reaches it on stdin (never
    in argv), the batches come back pickled on its stdout.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([sys.executable, "-m", "mailer.people.importreader", str(path), str(batch_size),
                                source or ""],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    try:
        process.stdin.write(hash_key.encode() + b"\n")
        process.stdin.close()
        while True:
            head = process.stdout.read(8)
            frame = process.stdout.read(int.from_bytes(head, "big")) if len(head) == 8 else b""
            try:
                kind, value = pickle.loads(frame)   # read whole first: the child is not held up by unpickling
            except (EOFError, pickle.UnpicklingError):
                process.stdout.close()
                last = process.stderr.read().decode(errors="replace").strip().splitlines()[-1:]
                raise MailerError(f"{path}: the import's reader process stopped unexpectedly (exit code "
                                  f"{process.wait()}){': ' + last[0] if last else ''}") from None
            if kind == "batch":
                yield value
            elif kind == "end":
                return
            elif kind == "error":
                raise InputError(value)
            else:
                raise MailerError(f"{path}: reading failed: {value}")
    finally:
        process.stdout.close()          # a child still writing gets a broken pipe and ends
        process.stderr.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _child_main() -> None:
    """``python -m mailer.people.importreader PATH BATCH_SIZE SOURCE`` with the hash key on stdin: frames on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's: it closes the pipe, we stop
    path, batch_size, source = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
    hash_key = sys.stdin.buffer.readline().rstrip(b"\n").decode()
    out = sys.stdout.buffer
    sys.stdout = sys.stderr                        # nothing else may write into the frames

    def send(frame: tuple[str, Any]) -> None:
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(len(data).to_bytes(8, "big") + data)
        out.flush()

    try:
        with open(path, "rb", buffering=64 * 1024) as f:
            for batch in read_batches(Path(path), f, hash_key, batch_size, source):
                send(("batch", batch))
        send(("end", None))
    except BrokenPipeError:
        os._exit(0)                                # the parent stopped reading: nothing to say
    except InputError as exc:
        send(("error", str(exc)))
    except Exception as exc:                       # reported by the parent as one line
        send(("crash", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    from mailer.people.importreader import _child_main as main   # pickled batches must name mailer.people.importreader.Batch

    main()
