use aegis_fuzz::{Error, ITERATIONS_DEFAULT, Options, SEED_DEFAULT, parse_number};

fn parse(args: &[&str]) -> Result<Options, Error> {
    Options::parse(args.iter().map(|s| (*s).to_owned()))
}

#[test]
fn defaults_and_flags() {
    let options = parse(&[]).unwrap();
    assert_eq!(options.iterations, ITERATIONS_DEFAULT);
    assert_eq!(options.seed, SEED_DEFAULT);
    assert_eq!(
        (options.target, options.replay, options.list),
        (None, None, false)
    );

    let options = parse(&[
        "--iterations",
        "500",
        "--seed",
        "0xff",
        "--target",
        "resp",
        "--replay",
        "1_000",
    ])
    .unwrap();
    assert_eq!(options.iterations, 500);
    assert_eq!(options.seed, 255);
    assert_eq!(options.target.as_deref(), Some("resp"));
    assert_eq!(options.replay, Some(1000));
    assert!(parse(&["--list"]).unwrap().list);
}

#[test]
fn bad_command_lines_are_refused() {
    assert!(matches!(
        parse(&["--bogus"]),
        Err(Error::UnknownArgument { .. })
    ));
    assert!(matches!(
        parse(&["--seed"]),
        Err(Error::MissingValue { flag: "--seed" })
    ));
    assert!(matches!(
        parse(&["--seed", "x1"]),
        Err(Error::BadNumber { .. })
    ));
    assert!(matches!(
        parse(&["--target", "nope"]),
        Err(Error::UnknownTarget { .. })
    ));
    assert_eq!(parse(&["--replay", "3"]), Err(Error::ReplayWithoutTarget));
    assert_eq!(parse(&["--iterations", "0"]), Err(Error::NoIterations));
    assert_eq!(parse_number("0x10"), Some(16));
    assert_eq!(parse_number("-1"), None);
}
