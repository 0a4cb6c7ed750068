fn main() {
    println!("crackscope: under construction");
}
