"""A classroom on one server: N students take the main path at once; the server's memory, step by step.

`python -m loadtest` starts `streamlit run streamlit_app.py` headless on a free port and drives N (default 8)
sessions from one headless chromium (one browser context each, all driven by one asyncio loop), or, with
`--protocol-sessions K`, K of them as protocol students and the other N - K in chromium:

  teacher  (unless --no-teacher) one session takes the whole path first, alone, with its own
           seed: it pays the server's one-time costs (importing torch, the shipped checkpoint,
           MNIST, the similarities, torch._dynamo which torch.optim imports on first use, chart
           code), so what follows measures what each *student* adds
  join     one after another, so that each session's cost can be read off: open the app and wait
           until the Home page is rendered, then open the Label page (MNIST and the similarities
           are cached per server: a later session only reads them)
  path     all at once: Train ("Advanced and classroom options" -> "Quick classroom preset",
           Epochs = --epochs, Seed = --seed-base + session, so every session trains its own model
           concurrently; with --same-config all use one seed, and the shared registry then decides
           who trains) -> click Train -> "Training finished" -> Eigenvectors.

           Then Tensor (a page switch while other sessions still train or queue), and once every
           session is through, Explain, all at once (a page switch after the trainings).

Every page switch is timed in the page: from the click on the sidebar link (a capture listener
takes the click's own time) to the new page's h1 heading and its first content element being
visible, then painted (two animation frames later); the script run is still waited for, as
before. Each switch is put in a phase of the class's timeline: before the first student pressed
Train, while trainings run or queue, after the last one finished. Each training is timed from the
Train click (in the page) to "Training finished", with its wait in the queue (until the progress
shows its first epoch; the first "Waiting for a free trainer" text gives its position and the
server's estimate) and its own training seconds: the last epoch's `seconds` in the checkpoint the
server wrote to its model store (the value the Train page's caption rounds). The teacher trains
twice alone, the second time warm: that run is the "alone" baseline of the ratios.
`--memory-cap MIB` runs the server in a memory cgroup (v2 memory.max or v1
memory.limit_in_bytes) and reports its failcnt / OOM counters.

`--protocol-sessions K`: the first K students are protocol students (loadtest/protocol.py): no browser,
Streamlit's own websocket protocol spoken by this process, as a browser speaks it to the server (the page's
HTML, the first rerun with its query string, every widget's state with each rerun, a button's trigger, a number
input's value, page switches by page_script_hash, the fragments' timed reruns, the message cache, the images).
In a class every browser runs on its student's device; 30 chromium tabs here took 72 % of the server's 2 cores
(README). Protocol students load the server as browsers do while one or two chromium sessions still measure
painted page switches. They take the same path with the same settings and phases, and their results go
into the same summaries, told apart by `kind`. What they do not measure is painting: a protocol student's page
switch runs from sending the rerun to the new page's h1 delta and the first content delta after it (its switch
time, against the same 3 s target), and to script_finished; its training, from the Train click's rerun to the
deltas carrying the queue message, the first epoch and "Training finished". Its errors are every exception
element and st.error alert that arrives. The teacher and the board tab stay in chromium.
bench/protocol_vs_browser.py checks a protocol student against a chromium tab on a quiet server. The protocol is
Streamlit's private one, read from 1.67.0: with any other Streamlit installed the run stops before it starts.

`--teacher-board` opens one more tab, the teacher's, on the Class board once the warm-up session
is done and before the first student joins, and leaves it alone (no click, no reload) until the
end: a projector showing the board through the whole lesson, whose fragment wakes every 2 s and
reruns the page when a model arrives. An observer in that tab records the script runs it shows and
when each model's tile first showed (the machine's clock), so the report adds: how many runs the
tab saw and how many were redraws that brought new models (with their script seconds), and for each
student the seconds from their page showing "Training finished" to their model on the teacher's
board (median and max; negative when the board was first), against the issue's goal of 5 s; the
tab's error elements count with the students'. Its RSS is marked "board open", so the first join's
increment stays the student's own.

`--replicas R` (issue 26) runs R servers that share one room and one model store, as replicas behind sticky
sessions: `--room postgres` starts a throwaway PostgreSQL 15 cluster and `--store s3` moto's S3 server with a
bucket (harness/services.py; ports from BILINEAR_LAB_TEST_PG_PORT / _S3_PORT, else BILINEAR_LAB_PORTS' first free
one, else the kernel's), and every server gets the same BILINEAR_LAB_ROOM_URL and s3:// BILINEAR_LAB_MODEL_STORE.
Student i uses replica i mod R for every visit; each replica gets its own teacher's warm-up (one after another,
each alone) and, with --teacher-board, its own board tab. Once the class is on Explain the tool waits (at most
60 s) until every board shows every model, so a late arrival is measured, not cut off. The report adds each
replica's students, page switches, trainings, board, peak RSS and CPU seconds (PostgreSQL and moto apart, as
"services"), and for every student's model the seconds from its "Training finished" to its tile on its own
replica's board and on the other replicas' boards (median, p95, max).

Every server runs with BILINEAR_LAB_PROFILE_ROOM set (server/room_profile.py): it appends, per script run, the
page, the run's seconds and the seconds spent in the room's database calls (server.room.Room._read and
_transaction), and a line per database call outside a page run (fragments, callbacks, training threads). The
report gives, per server and page, the database's share of the runs' time, per run (median, p95) and in the
runs that queried it (the room is read at most once a second per server).

Every session must end with no exception or st.error element on any page it visited. The
server's RSS (psutil: the streamlit process and its children, if any) is read before any session,
after each join (Home rendered), after each session's Label page, after each training, and at the
end; a thread also samples it every 50 ms for the peak. Printed: per-session wall times, the RSS
timeline, and the increments: the teacher's one-time costs, per joined session, per Label visit,
and per student over the concurrent part (the ~230 KB of weights, plus whatever the transient
buffers of training leave behind in glibc's heap and per-thread arenas). `--env KEY=VALUE` sets a
variable for the server only, e.g. MALLOC_MMAP_THRESHOLD_=4194304 or OMP_NUM_THREADS=1.

The machine has 2 cores shared by the server, chromium and this driver (the protocol students too): wall times
under load are only indicative; the memory numbers are what this tool is for.

The package, by concern (the server and chromium are started by harness/browser.py, which the browser
tests use too):

  __main__.py   the command line: options, the report, --json
  classroom.py  the scenario (run): the server(s) and the services they share, the teacher, the joins, the path,
                the cgroups and samplers
  browser.py    the chromium driver: a student's tab, page switches timed in the page, the teacher's board tab
  protocol.py   the protocol driver: Streamlit 1.67.0's websocket protocol spoken without a browser
  session.py    a session's record, which both drivers fill in
  usage.py      the server's RSS at named moments, and who used the CPU
  cgroups.py    --browser-shares and --memory-cap (Linux cgroups, root)
  stats.py      the numbers read off a run (increments, switches by phase, trainings, the board, per replica,
                the arrival on every board, the database's share of the page runs)
  report.py     the printed report and the class's targets

    .venv/bin/python -m loadtest                       # 8 sessions, 3 epochs each
    .venv/bin/python -m loadtest --sessions 4 --same-config --json artifacts/classroom.json
    .venv/bin/python -m loadtest --no-teacher         # a cold server meets the class at once
    .venv/bin/python -m loadtest --env OMP_NUM_THREADS=1 --env MALLOC_MMAP_THRESHOLD_=4194304
    .venv/bin/python -m loadtest --sessions 30 --memory-cap 2700 --json artifacts/classroom30.json
    .venv/bin/python -m loadtest --sessions 3 --epochs 1 --teacher-board   # the board tab, small
    .venv/bin/python -m loadtest --sessions 30 --teacher-board --memory-cap 2700 --json artifacts/cb30.json
    .venv/bin/python -m loadtest --sessions 30 --teacher-board --memory-cap 2700 --browser-shares 100
    .venv/bin/python -m loadtest --sessions 3 --protocol-sessions 2 --epochs 1   # 2 protocol, 1 chromium
    .venv/bin/python -m loadtest --sessions 30 --protocol-sessions 29 --teacher-board --memory-cap 2700 \
        --browser-shares 100 --json artifacts/cb30_protocol.json
    .venv/bin/python -m loadtest --replicas 2 --room postgres --store s3 --sessions 60 --protocol-sessions 60 \
        --epochs 3 --teacher-board --json artifacts/r2x30.json    # 2 x 30 students, two replicas (issue 26)
"""
