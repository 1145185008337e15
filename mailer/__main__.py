from mailer.cli import main

main()
