from hpd.cli import main

raise SystemExit(main())
