"""The desk's report editor: one report's text in a form (GET), saved back (POST) through
mailer.desk.reportedit; 409 when the issue went out or the file changed meanwhile, 422 for a text
that does not read as a report (the file stays as it was)."""

from __future__ import annotations

from urllib.parse import quote

from flask import redirect, request

from mailer.desk import audit, reportedit
from mailer.desk import issues as desk_issues
from mailer.desk.pages import bp, message, render
from mailer.desk.pages.issues import actor, sentence
from mailer.errors import InputError
from mailer.web.pages import web


def _page(slug: str, source: reportedit.ReportSource, status: int = 200, *, text: str | None = None,
          error: str = "", mine: str = "") -> tuple[str, int]:
    return render("report_edit.html", status, title=f"Edit {source.name}", section="issues", slug=slug,
                  source=source, text=source.text if text is None else text, error=error, mine=mine,
                  max_chars=reportedit.PASTE_MAX)


def _not_found(exc: InputError) -> tuple[str, int]:
    title = "No such issue" if isinstance(exc, desk_issues.NoSuchIssue) else "No such report"
    return message(title, sentence(exc), 404)


@bp.get("/issues/<slug>/reports/<name>/edit")
def report_edit_form(slug: str, name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        source = reportedit.report_source(folder, name)
    except desk_issues.IssueLocked as exc:
        return message("This issue cannot change", sentence(exc), 409)
    except (desk_issues.NoSuchIssue, reportedit.NoSuchFile) as exc:
        return _not_found(exc)
    except InputError as exc:          # not UTF-8: fixed on the server, not here
        return message("This report cannot be edited here", sentence(exc), 422)
    return _page(slug, source)


@bp.post("/issues/<slug>/reports/<name>/edit")
def report_edit(slug: str, name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    text = request.form.get("text", "")
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        reportedit.save_report(folder, name, text, request.form.get("version", ""), ctx.settings.language)
    except desk_issues.IssueLocked as exc:
        return message("This issue cannot change", sentence(exc), 409)
    except (desk_issues.NoSuchIssue, reportedit.NoSuchFile) as exc:
        return _not_found(exc)
    except reportedit.ChangedMeanwhile as exc:      # the file as it is now in the form, their text beside it
        return _page(slug, reportedit.report_source(folder, name), 409, error=sentence(exc),
                     mine=text[:reportedit.PASTE_MAX])
    except InputError as exc:
        try:
            source = reportedit.report_source(folder, name)
        except InputError:
            return message("This report cannot be edited here", sentence(exc), 422)
        return _page(slug, source, 422, text=text[:reportedit.PASTE_MAX], error=sentence(exc))
    audit.log(ctx.db, "report_edit", target=f"{slug}/{name}", detail=f"{len(text):,} characters", **actor())
    return redirect(f"/desk/issues/{quote(slug)}?done=edited#reports", 303)
