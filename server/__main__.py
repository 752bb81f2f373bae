from server.cli import main

if __name__ == "__main__":  # a spawned worker process must not start a second server
    main()
