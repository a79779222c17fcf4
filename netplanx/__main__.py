from netplanx.cli.main import main

raise SystemExit(main())
