from netplanx.cli.main import run

run()
