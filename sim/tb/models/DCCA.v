// Behavioural model of the ECP5 DCCA (global clock buffer with enable) as edgetrain uses
// it: hw/fanout.py puts high-fanout control bits on a global network through one, with CE
// tied high. Written from Lattice's description of the primitive, not from a vendor model.
module DCCA (input CLKI, input CE, output CLKO);
    assign CLKO = CLKI & CE;
endmodule
