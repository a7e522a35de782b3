import firmware.app

firmware.app.main()
