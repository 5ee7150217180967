from klaviyo_tui.cli.main import main

main()
