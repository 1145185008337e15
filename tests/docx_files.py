"""Word documents built part by part as Word writes them, for the desk's .docx tests: `docx` (the
parts mammoth needs and extra members) and `docx_with_pictures`."""

from __future__ import annotations

import io
import zipfile

NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
      'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
      'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
      'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture" '
      'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "emf": "image/x-emf"}


def docx(paragraphs_xml: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal Word document of *paragraphs_xml*, with *extra* members."""
    return _document(paragraphs_xml, "", extra or {})


def docx_with_pictures(text: str, pictures: list[tuple[bytes, str, str]]) -> bytes:
    """A paragraph of *text*, then one paragraph per picture (data, extension, alt text)."""
    runs = [f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"]
    rels = []
    for n, (_, ext, alt) in enumerate(pictures, 1):
        runs.append(f'<w:p><w:r><w:drawing><wp:inline><wp:docPr id="{n}" name="Picture {n}" descr="{alt}"/>'
                    '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
                    f'<pic:pic><pic:blipFill><a:blip r:embed="rIdImg{n}"/></pic:blipFill></pic:pic>'
                    '</a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>')
        rels.append(f'<Relationship Id="rIdImg{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    f'relationships/image" Target="media/image{n}.{ext}"/>')
    media = {f"word/media/image{n}.{ext}": data for n, (data, ext, _) in enumerate(pictures, 1)}
    return _document("".join(runs), "".join(rels), media)


def _document(body: str, rels: str, extra: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        defaults = "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in TYPES.items())
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   f'<Default Extension="xml" ContentType="application/xml"/>{defaults}'
                   '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
                   '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        if rels:
            z.writestr("word/_rels/document.xml.rels",
                       '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                       f'relationships">{rels}</Relationships>')
        z.writestr("word/document.xml", f'<?xml version="1.0"?><w:document {NS}><w:body>{body}</w:body></w:document>')
        for name, data in extra.items():
            z.writestr(name, data)
    return out.getvalue()
