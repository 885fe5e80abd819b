from bugnet_gateway.usage.collector import main

raise SystemExit(main())
