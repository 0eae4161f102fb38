from kdlab.cli.main import main

raise SystemExit(main())
