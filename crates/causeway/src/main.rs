fn main() {
    eprintln!("causeway: not yet built; see README.md");
    std::process::exit(2);
}
