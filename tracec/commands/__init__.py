"""One module per `tracec` command; each has `main(args) -> int`. Parsing, exit statuses and
error printing live in `tracec.cli`."""
