from klaviyo_tui.cli import main

main()
