"""SupportChat's email notification worker: drains the server's `notifications` outbox into SMTP.

`supportchat notify --db-url ... --smtp-url ...` (or `python -m notify`) runs `worker.Worker`; see
README.md in this folder for the design (claim → DATA → mark delivering → "." → mark sent) and for
running it beside a real Supabase project.
"""
