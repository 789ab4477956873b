"""The embedded single-machine stack behind `make run` (`python -m stack`).

It prepares the environment the Django settings read, then starts and supervises the
embedded Redis, the migrations, the Celery worker (with beat) and the web server. Nothing
in this package imports Django or any product code: it runs before the settings are read
and starts the product only as subprocesses (their command lines are in stack.programs).

Modules, each importing only those listed after it:

    __main__     the command line: run (default), worker, web, manage
    launch       `run`: the whole stack, in order, then supervised
    supervisor   the children in order: restart with back-off, give up, stop in reverse
    children     one child process: start in its own process group, signal, kill
    programs     the command lines of the product processes (celery, gunicorn, manage.py)
    address      where the web server listens, and the URL shown
    redis        finding and probing Redis; the embedded Redis's socket and command line
    environment  the data directory, SECRET_KEY and what the settings read
    reporting    `[q16]` lines on stderr and one-line errors
"""
