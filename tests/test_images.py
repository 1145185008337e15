"""Images in the issue folder: checked, sized, published on preview, served by `mailer serve`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.db import Database
from mailer.errors import ComposeError
from mailer.mail.preview import write_preview
from mailer.web import create_app
from tests.helpers import make_issue

BASE = "https://news.example.org"


def photo(path: Path, size: tuple[int, int] = (1600, 900), noise: bool = False, fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, "teal")
    img.save(path, fmt)
    return path


def issue_with(project: Path, markdown: str, slug: str = "photos") -> Path:
    return make_issue(project, slug, {"01-march.md": "# The march\n\n" + markdown + "\n\nWe walked.\n"})


@pytest.fixture
def settings(project: Path) -> Settings:
    return Settings(root=project, secret_keys=("k",), base_url=BASE)


def test_a_photo_in_the_issue_folder_is_sized_and_linked_by_its_public_address(project, settings):
    folder = issue_with(project, "![Marchers on Mill Lane](images/march.jpg)")
    photo(folder / "images" / "march.jpg")
    issue = compose_issue(settings, folder)
    [image] = issue.images
    assert image.name.endswith("-march.jpg") and (image.width, image.height) == (600, 338)
    url = f"{BASE}/media/photos/{image.name}"
    assert f'src="{url}" width="600" height="338"' in issue.html
    assert f'src="{url}"' in issue.archive_html
    assert issue.warnings == ()


def test_preview_copies_the_images_beside_it_and_into_media_dir_and_serve_answers(project, settings):
    folder = issue_with(project, "![Marchers](images/march.jpg)")
    photo(folder / "images" / "march.jpg")
    issue = compose_issue(settings, folder)
    files = write_preview(settings, issue)
    name = issue.images[0].name
    assert (files.folder / "media" / name).is_file()
    assert f'src="media/{name}"' in files.html.read_text()
    published = project / "media" / "photos" / name
    assert published.read_bytes() == (folder / "images" / "march.jpg").read_bytes()
    db = Database(f"sqlite:///{project}/subscribers/mailer.db")
    db.upgrade()
    client = create_app(settings, db=db, start_queue=False).test_client()
    answer = client.get(f"/media/photos/{name}")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.data == published.read_bytes()
    for bad in ("/media/photos/nothere.jpg", "/media/photos/..%2f..%2fmailer.toml", "/media/../mailer.toml",
                f"/media/photos/{name[:-4]}.html"):
        assert client.get(bad).status_code == 404, bad
    db.dispose()


@pytest.mark.parametrize("make, expected", [
    (lambda d: None, "image 'images/x.jpg' not found in photos/"),
    (lambda d: (d / "images").mkdir() or (d / "images" / "x.jpg").write_text("not a picture"),
     "image 'images/x.jpg': not a JPEG, PNG, GIF or WebP image"),
    (lambda d: (d / "images").mkdir() or (d / "images" / "x.jpg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
     "image 'images/x.jpg': SVG is not shown by most mail clients"),
    (lambda d: photo(d / "images" / "x.jpg", (1500, 1500), noise=True, fmt="PNG"),
     "image 'images/x.jpg' is 6.8 MB; mail needs images under 5 MB"),
])
def test_a_bad_image_is_one_error_naming_report_and_file_and_nothing_is_written(project, settings, make, expected):
    folder = issue_with(project, "![A picture](images/x.jpg)")
    make(folder)
    with pytest.raises(ComposeError) as caught:
        compose_issue(settings, folder)
    assert f"01-march.md: {expected}" in str(caught.value)
    assert not (project / "build").exists() and not (project / "media").exists()


def test_an_image_outside_the_issue_folder_is_refused(project, settings):
    photo(project / "secret.jpg")
    folder = issue_with(project, "![x](../../secret.jpg)")
    with pytest.raises(ComposeError, match="01-march.md: image '../../secret.jpg' lies outside the issue folder"):
        compose_issue(settings, folder)


def test_a_large_image_is_a_warning_and_a_relative_link_still_an_error(project, settings):
    folder = issue_with(project, "![Big](images/big.png)")
    photo(folder / "images" / "big.png", (800, 700), noise=True, fmt="PNG")
    issue = compose_issue(settings, folder)
    assert any("images/big.png' is 1.7 MB; readers on phones will wait" in w for w in issue.warnings)
    folder = issue_with(project, "See [the notes](notes.pdf).", slug="links")
    with pytest.raises(ComposeError, match="link 'notes.pdf' is not an absolute http"):
        compose_issue(settings, folder)


def test_sending_publishes_the_images_before_any_message_names_them(project, settings):
    from mailer.backends.memory import MemoryBackend
    from mailer.sending import campaign
    from tests.helpers import add_subscribers

    folder = issue_with(project, "![Marchers](images/march.jpg)")
    photo(folder / "images" / "march.jpg")
    db = Database(f"sqlite:///{project}/subscribers/mailer.db")
    db.upgrade()
    add_subscribers(db, "news", 2)
    issue = compose_issue(settings, folder)
    published = project / "media" / "photos" / issue.images[0].name
    assert not published.exists()
    campaign.start(db, issue, ["news"])
    assert published.read_bytes() == (folder / "images" / "march.jpg").read_bytes()
    MemoryBackend.reset()
    db.dispose()
