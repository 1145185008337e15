"""Reports by mail: group members mail reports to a submission address; `mailer intake` (and the
worker, when `submissions.mailbox` is set) files them, held, in a digest folder's inbox.

Owns the submission settings' meaning, who may submit (`senders`), turning one mail into report
files (`convert`, with `htmltext` for HTML bodies and .docx), the held records in the database
and under the digest's ``inbox/held/`` (`held`), reading the mailbox once per mail (`poll`) and
the RFC 3834 auto-reply (`reply`). It reads mail with the one mailbox reader
(mailer.people.mailbox) and files into the digest layout of mailer.scheduling.digest (whose runs
take only the files at the top of ``inbox/``, so ``inbox/held/`` waits for an editor). May import
people, mail, backends, content, scheduling.digest's folder names and the floor.
"""
