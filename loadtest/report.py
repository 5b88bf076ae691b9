"""The printed report of a run (its JSON has everything, report() what a reader looks for first) and the
class's targets."""

from __future__ import annotations

import os

from loadtest.session import MB
from loadtest.stats import MEASURES, PHASES

TARGET = {"switch_p95": 3.0, "ratio_max": 5.0, "peak_rss": 1.5 * 2**30, "board_max": 5.0}


def report(result: dict) -> None:
    c, inc = result["config"], result["increments"]
    seeds = f"one shared config (seed {c['seed_base']})" if c["same_config"] else "one seed per session"
    protocol = c.get("protocol_sessions", 0)
    kinds = f" ({protocol} protocol students, {c['sessions'] - protocol} in chromium)" if protocol else ""
    print(
        f"{c['sessions']} sessions{kinds}, {c['epochs']} epochs each on the quick preset, {seeds}, "
        f"{'after a teacher session' if c['teacher'] else 'no teacher session (cold server)'}"
        f"{', server env ' + str(c['env']) if c['env'] else ''}; {os.cpu_count()} cores, load average "
        f"{result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after; "
        f"{result['seconds']:.0f} s in all; server log {result['log']}"
    )
    if c.get("replicas", 1) > 1:
        print(
            f"{c['replicas']} replicas sharing the room ({c['room']}) and the model store ({c['store']}); student i "
            f"on replica i mod {c['replicas']}, every visit (sticky sessions)"
        )
    print()
    print(
        f"{'session':>7} {'kind':>8} {'seed':>6} {'join':>6} {'label':>6} {'setup':>6} {'train':>6} {'eigen':>6} "
        f"{'total':>6}  outcome   errors   (wall seconds)"
    )
    rows = result.get("teachers", [result["teacher"]] if result["teacher"] else []) + result["sessions"]
    for s in rows:
        t = s["seconds"]
        cells = " ".join(
            f"{t[k]:6.1f}" if k in t else f"{'-':>6}"
            for k in ("join", "label", "train_setup", "training", "eigenvectors", "total")
        )
        name = "teacher" if s["index"] < 0 else s["index"]
        if c.get("replicas", 1) > 1:
            name = f"{name}@{s['replica']}"
        print(
            f"{name:>7} {s['kind']:>8} {s['seed']:>6} {cells}  {s['outcome']:<9} {len(s['errors'])}"
            + "".join(f"\n{'':>9}{e}" for e in s["errors"])
            + "".join(f"\n{'':>9}protocol trouble: {p}" for p in s["problems"])
        )
    print()
    if c.get("replicas", 1) > 1:
        print(f"RSS: the {c['replicas']} servers summed (each one's peak below, under replicas)")
    print(f"{'t (s)':>7} {'session':>7}  {'event':<18} {'RSS (MB)':>9} {'delta':>8}")
    previous = None
    for e in result["events"]:
        delta = "" if previous is None else f"{(e['rss'] - previous) / MB:+8.1f}"
        session = "" if e["session"] is None else e["session"]
        print(f"{e['t']:7.1f} {session:>7}  {e['event']:<18} {e['rss'] / MB:9.1f} {delta:>8}")
        previous = e["rss"]
    print(
        f"peak RSS while the students worked: {result['peak_rss'] / MB:.1f} MB (sampled every 50 ms"
        + ("; the largest server's)" if c.get("replicas", 1) > 1 else ")")
    )
    print()
    completed = sum(s["completed"] for s in result["sessions"])
    outcomes = [s["outcome"] for s in result["sessions"]]
    print(
        f"students completed without an error element: {completed} / {c['sessions']} "
        f"({outcomes.count('trained')} trained a model, {outcomes.count('reused')} reused one)"
    )

    def line(label: str, key: str, note: str = "", signed: bool = True) -> None:
        if key in inc:
            value = f"{inc[key] / MB:+9.1f}" if signed else f"{inc[key] / MB:9.1f}"
            print(f"  {label:<52} {value} MB  {note}")

    one_time = "" if c["teacher"] else "  (includes one-time costs: no teacher)"
    weights = "?" if result["model_bytes"] is None else f"{result['model_bytes'] / 1024:.0f} KB"
    line("server idle, no session", "idle", signed=False)
    line("teacher: join (torch, checkpoint)", "teacher_join", "one-time")
    line("teacher: Label (MNIST, similarities, chart code)", "teacher_label", "one-time")
    line("teacher: training, Eigenvectors (torch._dynamo, ...)", "teacher_rest", "one-time")
    line("first student's join (torch, checkpoint)", "first_join", "one-time")
    line("first student's Label (MNIST, similarities)", "first_label", "one-time")
    if "per_join" in inc:
        goal = "met" if inc["per_join"] < 20 * MB else "NOT met"
        line(
            "per joined student (Home rendered), mean",
            "per_join",
            f"max {inc['max_join'] / MB:+.1f}; goal < 20 MB: {goal}",
        )
        line("per student's Label visit, mean", "per_label", f"max {inc['max_label'] / MB:+.1f}")
        line(
            "per student, concurrent training + Eigenvectors + Tensor",
            "per_student_concurrent",
            f"(its weights alone: {weights}){one_time}",
        )
        line("per student, everything", "per_student_total", one_time.strip())
    line("final", "final", signed=False)
    report_responsiveness(result)


def seconds(stats: dict, keys: tuple[str, ...] = ("median", "p95", "max")) -> str:
    if not stats.get("n"):
        return "none"
    return ", ".join(f"{key} {stats[key]:.2f}" for key in keys) + f" s (n = {stats['n']})"


def report_responsiveness(result: dict) -> None:
    """Page switches, trainings and the queue, the memory cap, and the class target."""
    c, sw, tr = result["config"], result.get("switching"), result.get("training")
    if sw is None or tr is None:
        return
    print()
    print(
        "page switches, seconds: median / p95 / max (n). A browser session: click on the sidebar link -> the page's h1"
    )
    print("and first content element painted (in the page), and -> its script run finished. A protocol student: rerun")
    print(
        "sent -> the h1 delta and the first content delta after it arrived, and -> script_finished (the server's part"
    )
    print("of a switch: nothing is painted)")
    if sw["first_train_click"] is not None:
        print(
            f"  phases (driver clock): before = ended before the first Train press ({sw['first_train_click']:.0f} s), "
            f"after = started once the last training finished ({sw['last_training_finished']:.0f} s)"
        )
    columns = [
        (kind, key, label)
        for kind, key, label in (
            ("browser", "shown", "browser: painted"),
            ("browser", "run_done", "browser: run finished"),
            ("protocol", "content", "protocol: h1 + content"),
            ("protocol", "run_done", "protocol: script_finished"),
        )
        if sw[kind]["sessions"]
    ]

    def cell(stats: dict) -> str:
        return f"{stats['median']:.2f} / {stats['p95']:.2f} / {stats['max']:.2f} ({stats['n']})" if stats["n"] else "-"

    print(f"  {'':<22}" + "".join(f"{label:<28}" for _, _, label in columns))
    rows = [(f"{phase} training", lambda stats, phase=phase: stats["phases"][phase]) for phase in PHASES]
    rows.append(("all", lambda stats: stats["all"]))
    rows += [(step, lambda stats, step=step: stats["steps"][step]) for step in sw["step_phases"]]
    for name, pick in rows:
        counts = sw["step_phases"].get(name)
        phases = f"  [{', '.join(f'{n} {phase}' for phase, n in counts.items() if n)}]" if counts else ""
        print(f"  {name:<22}" + "".join(f"{cell(pick(sw[kind][key])):<28}" for kind, key, _ in columns) + phases)
    for kind, what in (("browser", "h1 visible in the page (not yet painted)"), ("protocol", "h1 delta alone")):
        if sw[kind]["sessions"]:
            print(f"  {kind + ': ' + what:<50} {seconds(sw[kind]['heading']['all'])}")
    print(f"  {'teacher (browser), alone: painted':<50} {seconds(sw['teacher'])}")
    print()
    print("trainings: Train click -> 'Training finished' (wall), queue wait (click -> first epoch shown),")
    print("own seconds (the run's last epoch, from the checkpoint the server stored), ratio = own / teacher's alone")
    for run in tr["alone_runs"]:
        own = "-" if run["own_seconds"] is None else f"{run['own_seconds']:.2f}"
        print(f"  {run['what']:<40} seed {run['seed']}: own {own} s, wall {run['wall']:.2f} s")
    print(f"  students who trained                     {tr['trained']} ({tr['queued']} saw the queue message)")
    print(f"  {'wall, click -> finished':<40} {seconds(tr['wall'])}")
    for kind, part in tr["by_kind"].items():
        if part["trained"] and sw[kind]["sessions"] < c["sessions"]:  # both kinds in the class: each on its own
            print(f"  {'  ' + kind + ' sessions':<40} {seconds(part['wall'])}; own / alone {seconds(part['ratio'])}")
    print(f"  {'queue wait':<40} {seconds(tr['queue_wait'])}")
    print(f"  {'own training seconds':<40} {seconds(tr['own_seconds'])}")
    print(f"  {'finished training -> message shown':<40} {seconds(tr['after_training'])}")
    if tr["ratio"].get("n"):
        r = tr["ratio"]
        print(f"  {'own / alone':<40} median {r['median']:.2f}, p95 {r['p95']:.2f}, max {r['max']:.2f} (n = {r['n']})")
    if tr["missing_own_seconds"] or tr["missing_queue_wait"]:
        print(
            f"  missing: own seconds of {tr['missing_own_seconds']}, queue wait of {tr['missing_queue_wait']} trainings"
        )
    print(f"  {'first queue estimate shown':<40} {seconds(tr['queue_estimate_first'])}")
    print()
    board = result.get("teacher_board")
    if board is not None:
        print(
            f"the teacher's Class board tab, open {board['open_seconds']:.0f} s with no click or reload: "
            f"{board['runs']} script runs seen (its fragment's wakes and the redraws they asked for; a wake shorter "
            "than a frame may not show), "
            f"{board['redraws']} redraws with new models, {board['models_seen']} models seen"
        )
        print(f"  {'a redraw, script run':<40} {seconds(board['redraw_seconds'])}")
        print(f"  {'any run of the tab':<40} {seconds(board['run_seconds'])}")
        print(f"  {'between the starts of two runs':<40} {seconds(board['wake_interval'], ('min', 'median', 'max'))}")
        print(f"  {'Training finished -> on the board':<40} {seconds(board['latency'], ('median', 'max'))}")
        if board["missing"]:
            print(f"  never seen on the board (or no finish time): sessions {board['missing']}")
        for text in board["errors"]:
            print(f"  error element on the board: {text}")
        print()
    report_replicas(result)
    report_database(result)
    cpu = result.get("cpu")
    if cpu:
        used = cpu["cpu_seconds"]
        total = cpu["wall"] * cpu["cores"]
        print(
            f"CPU over the {cpu['wall']:.0f} s of browser work ({total:.0f} core-seconds on {cpu['cores']} cores): "
            + ", ".join(f"{group} {seconds:.0f} s ({seconds / total:.0%})" for group, seconds in used.items())
            + f"; load average up to {cpu['load_average_max']:.1f}"
        )
        if len(cpu.get("per_server", [])) > 1:
            print(
                "  per replica: "
                + ", ".join(
                    f"server {r} {seconds:.0f} s ({seconds / total:.0%})" for r, seconds in enumerate(cpu["per_server"])
                )
            )
        if cpu["other_test_runs"]:
            first, last = cpu["other_test_runs_seen_at"]
            print(f"  other test runs were running from {first:.0f} s to {last:.0f} s: {cpu['other_test_runs']}")
        else:
            print("  no other test run (pytest -m) was seen meanwhile")
    cap = result.get("memory_cgroup")
    if cap is not None:
        if cap["applied"]:
            after = cap["after"]
            usage = f"{after['max_usage'] / MB:.0f} MiB" if after.get("max_usage") else "?"
            rose = ", ".join(f"{k} +{v}" for k, v in cap["rose"].items()) or "none rose"
            print(
                f"memory cap {cap['mib']} MiB (cgroup v{cap['version']}, {cap['path']}): the cgroup's peak usage "
                f"(RSS + page cache) {usage}; limit hits / OOM counters: {rose} ({after})"
            )
        else:
            print(f"memory cap {cap['mib']} MiB NOT applied: {cap['problem']}")
    if result.get("server_exit_code") is not None:
        print(f"the server had exited before the end, code {result['server_exit_code']}")
    peak = max(result["peak_rss"], result.get("peak_rss_teacher", 0))
    students = result["sessions"]
    completed = sum(s["completed"] for s in students)
    errors = sum(len(s["errors"]) for s in students)
    ratio = tr["ratio"].get("max")
    board = result.get("teacher_board")
    if board is not None:
        errors += len(board["errors"])
    checks = [
        (f"{completed}/{c['sessions']} completed", completed == c["sessions"]),
        (f"{errors} error elements or driver errors", errors == 0),
        *(
            (
                f"p95 page switch, {kind} ({MEASURES[kind][0]}) {switch['p95']:.2f} s < {TARGET['switch_p95']:.0f} s",
                switch["p95"] < TARGET["switch_p95"],
            )
            for kind in MEASURES
            if (switch := sw[kind][MEASURES[kind][0]]["all"]).get("n")
        ),
        (
            f"max own / alone {ratio if ratio is not None else float('nan'):.2f} < {TARGET['ratio_max']:.0f}",
            ratio is not None and ratio < TARGET["ratio_max"],
        ),
        (f"peak RSS {peak / MB:.0f} MiB < 1.5 GiB", peak < TARGET["peak_rss"]),
    ]
    if board is not None:
        late = board["latency"].get("max", float("inf"))
        checks.append(
            (
                f"on the teacher's board at most {late:.1f} s after Training finished, all {c['sessions']} "
                f"seen, < {TARGET['board_max']:.0f} s",
                late < TARGET["board_max"] and not board["missing"],
            )
        )
    arrival = result.get("arrival")
    if arrival is not None:
        errors_on_boards = sum(len(server["board"]["errors"]) for server in result["servers"])
        late = max(arrival["own"].get("max", float("inf")), arrival["other"].get("max", float("inf")))
        checks[1] = (f"{errors + errors_on_boards} error elements or driver errors", errors + errors_on_boards == 0)
        checks.append(
            (
                f"on every replica's board at most {late:.1f} s after Training finished, all {c['sessions']} "
                f"seen on all {c['replicas']}, < {TARGET['board_max']:.0f} s",
                late < TARGET["board_max"] and not arrival["missing"],
            )
        )
    print("target: " + "; ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks))


def report_replicas(result: dict) -> None:
    """With replicas: each one's students, switches, trainings, board and memory; every model's arrival on the
    boards, its own replica's and the others'."""
    servers = result.get("servers") or []
    if len(servers) < 2:
        return
    print("replicas: each one's students (page switches: the switch time of each kind, median / p95 / max (n))")
    for server in servers:
        sw, tr = server["switching"], server["training"]
        kinds = ", ".join(
            f"{kind} {seconds(sw[kind][MEASURES[kind][0]]['all'])}" for kind in MEASURES if sw[kind]["sessions"]
        )
        print(
            f"  server {server['replica']}: {server['completed']}/{server['sessions']} completed, peak RSS "
            f"{server['peak_rss'] / MB:.0f} MiB, CPU {server['cpu_seconds']:.0f} s; switches {kinds}"
        )
        print(f"  {'':<10}trainings {tr['trained']}: wall {seconds(tr['wall'])}; own / alone {seconds(tr['ratio'])}")
        board = server["board"]
        if board is not None:
            print(
                f"  {'':<10}its board: {board['runs']} runs seen, {board['redraws']} redraws with new models, "
                f"{board['models_seen']} models seen, a redraw's script run {seconds(board['redraw_seconds'])}"
            )
    arrival = result.get("arrival")
    if arrival is not None:
        print("every student's model, 'Training finished' on the student's page -> its tile on a board")
        print(f"  {'on its own replica board':<40} {seconds(arrival['own'])}")
        print(f"  {'on the other replica board':<40} {seconds(arrival['other'])}")
        if arrival["missing"]:
            print(f"  never seen (session, board): {arrival['missing']}")
    print()


def report_database(result: dict) -> None:
    """Each server's room profile: the database's share of its page runs, per page."""
    servers = result.get("servers") or []
    if not any(server["database"]["runs"] for server in servers):
        return
    print("the room's database (server.room.Room._read/_transaction) in each page run: share of the runs' time,")
    print("per run median / p95, and in the runs that queried it (the room is read at most once a second per server)")
    print(
        f"  {'server':<7}{'page':<14}{'runs':>5} {'run median/p95 s':>17} {'db share':>9} {'per run med/p95':>16} "
        f"{'queried':>8} {'share then':>10}"
    )
    for server in servers:
        for page, p in server["database"]["pages"].items():
            run, per = p["run_seconds"], p["share_per_run"]
            share = "-" if p["share_of_all_runs"] is None else f"{p['share_of_all_runs']:.1%}"
            then = "-" if p["share_when_queried"] is None else f"{p['share_when_queried']:.1%}"
            per_run = f"{per['median']:.1%} / {per['p95']:.1%}" if per.get("n") else "-"
            print(
                f"  {server['replica']:<7}{page:<14}{p['runs']:>5} {run['median']:>8.2f}/{run['p95']:<8.2f} {share:>9} "
                f"{per_run:>16} {p['runs_that_queried']:>8} {then:>10}"
            )
        total = server["database"]["share_of_all_runs"]
        outside = ", ".join(
            f"{group}: {o['calls']} calls, {o['database_s']:.1f} s"
            for group, o in server["database"]["outside_runs"].items()
        )
        print(
            f"  {server['replica']:<7}{'all pages':<14}{server['database']['runs']:>5} "
            f"{'':>17} {'-' if total is None else f'{total:.1%}':>9}   outside page runs: {outside or 'none'}"
        )
    print()
