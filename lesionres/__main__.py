from lesionres.cli import main

raise SystemExit(main())
