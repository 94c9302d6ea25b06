//! Runs the RabbitMQ controller's checks without the `anvil` binary:
//! `cargo run --release -p anvil-rabbitmq --example verify_rabbitmq -- [rabbitmq|rabbitmq-stale-scale-down|rabbitmq-cookie-rotation|rabbitmq-config-no-roll] [--edits N] [--stale N] [--no-drop] [--no-crash] [--state-limit N] [--no-read-tracking]`.

use anvil_cluster_model::esr::CheckOptions;
use anvil_cluster_model::report_text::report_text;
use anvil_rabbitmq::{broken, verify};
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("rabbitmq");
    let mut opts = CheckOptions {
        progress: Some(Arc::new(|p| eprintln!("{p:?}"))),
        ..Default::default()
    };
    let mut scope = match which {
        "rabbitmq-stale-scale-down" => broken::stale_scale_down_scope(),
        "rabbitmq-cookie-rotation" => broken::cookie_rotation_scope(),
        "rabbitmq-config-no-roll" => broken::config_no_roll_scope(),
        _ => verify::default_scope(),
    };
    if let Some(i) = args.iter().position(|a| a == "--edits") {
        scope.max_edits = args[i + 1].parse().expect("--edits N");
    }
    if let Some(i) = args.iter().position(|a| a == "--stale") {
        scope.max_stale_requests = args[i + 1].parse().expect("--stale N");
    }
    if let Some(i) = args.iter().position(|a| a == "--state-limit") {
        opts.state_limit = Some(args[i + 1].parse().expect("--state-limit N"));
    }
    if args.iter().any(|a| a == "--no-drop") {
        scope.faults.drop = false;
    }
    if args.iter().any(|a| a == "--no-crash") {
        scope.faults.crash = false;
    }
    println!("{scope}");
    let report = match which {
        "rabbitmq" if args.iter().any(|a| a == "--no-read-tracking") => {
            let mut spec = verify::spec::<anvil_rabbitmq::RabbitmqController>(which, &scope);
            spec.no_lost_updates = false;
            anvil_cluster_model::esr::verify(spec, scope, &opts)
        }
        "rabbitmq" => {
            verify::verify_reconciler::<anvil_rabbitmq::RabbitmqController>(which, scope, &opts)
        }
        "rabbitmq-stale-scale-down" => {
            verify::verify_reconciler::<broken::StaleScaleDown>(which, scope, &opts)
        }
        "rabbitmq-cookie-rotation" => {
            verify::verify_reconciler::<broken::CookieRotation>(which, scope, &opts)
        }
        "rabbitmq-config-no-roll" => {
            verify::verify_reconciler::<broken::ConfigNoRoll>(which, scope, &opts)
        }
        other => panic!("unknown controller {other}"),
    };
    print!("{}", report_text(&report));
}
