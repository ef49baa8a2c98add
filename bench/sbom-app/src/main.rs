use smallvec::SmallVec;

fn main() {
    let mut values: SmallVec<[u8; 4]> = SmallVec::new();
    values.push(1);
    let digits = regex::Regex::new(r"^\d+$").unwrap();
    let words = shlex::split("a 'b c'").unwrap_or_default();
    let mut buffer = itoa::Buffer::new();
    println!("{} {} {:?} {} {}", values.len(), digits.is_match("123"), words, atty::is(atty::Stream::Stdout), buffer.format(42));
}
